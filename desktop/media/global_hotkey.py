"""A system-wide hotkey on X11 (XGrabKey on the root window, listened to on a thread of its own), and in a
Wayland session through the desktop portal's GlobalShortcuts where the desktop offers it (`portal_shortcuts`).

Windows and macOS are not done yet, and a Wayland portal without GlobalShortcuts does not allow it:
`start_global_hotkey` then returns None and a sentence the UI shows ("System-wide hotkey: not available …").
No Qt here; the callback is called on the hotkey's thread, so it must only hand over (e.g. emit a Qt signal).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import sys
import threading
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .portal_shortcuts import PortalShortcut

from .screen_capture import unavailable_reason, wayland_session

log = logging.getLogger(__name__)

_MODS = {"ctrl": 1 << 2, "shift": 1 << 0, "alt": 1 << 3, "meta": 1 << 6, "super": 1 << 6}
_LOCK_MASKS = (0, 1 << 1, 1 << 4, (1 << 1) | (1 << 4))  # none, CapsLock, NumLock, both
_KEY_PRESS = 2
_GRAB_MODE_ASYNC = 1


class _XKeyEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong), ("root", ctypes.c_ulong), ("subwindow", ctypes.c_ulong), ("time", ctypes.c_ulong),
        ("x", ctypes.c_int), ("y", ctypes.c_int), ("x_root", ctypes.c_int), ("y_root", ctypes.c_int),
        ("state", ctypes.c_uint), ("keycode", ctypes.c_uint), ("same_screen", ctypes.c_int),
    ]


class _XEvent(ctypes.Union):
    _fields_ = [("type", ctypes.c_int), ("xkey", _XKeyEvent), ("pad", ctypes.c_long * 24)]


class X11Hotkey:
    def __init__(self, shortcut: str, callback: Callable[[], None], display: str | None = None) -> None:
        parts = [p.strip().lower() for p in shortcut.split("+")]
        self.mods = 0
        for p in parts[:-1]:
            if p not in _MODS:
                raise ValueError(f"unknown modifier {p!r}")
            self.mods |= _MODS[p]
        self.key = parts[-1]
        self.callback = callback
        self.display_name = display or os.environ.get("DISPLAY", "")
        self._stop = threading.Event()
        self._errors = 0
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.error: str | None = None

    def start(self, timeout: float = 2.0) -> bool:
        self._thread = threading.Thread(target=self._run, name="parley-hotkey", daemon=True)
        self._thread.start()
        self._ready.wait(timeout)
        return self.error is None and self._ready.is_set()

    def stop(self, timeout: float = 2.0) -> None:
        """Release the grab and close the connection (waits for the thread: Xlib exits the process if the X
        server goes away under an open connection)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        name = ctypes.util.find_library("X11")
        if not name:
            self.error = "libX11 is missing"
            self._ready.set()
            return
        x = ctypes.CDLL(name)
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x.XDefaultRootWindow.restype = ctypes.c_ulong
        x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x.XStringToKeysym.restype = ctypes.c_ulong
        x.XStringToKeysym.argtypes = [ctypes.c_char_p]
        x.XKeysymToKeycode.restype = ctypes.c_ubyte
        x.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        x.XGrabKey.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        x.XUngrabKey.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_ulong]
        x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x.XPending.argtypes = [ctypes.c_void_p]
        x.XNextEvent.argtypes = [ctypes.c_void_p, ctypes.POINTER(_XEvent)]
        x.XConnectionNumber.argtypes = [ctypes.c_void_p]
        x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        handler_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)

        def on_error(_d, _e) -> int:
            self._errors += 1
            return 0

        handler = handler_type(on_error)
        x.XSetErrorHandler.argtypes = [handler_type]
        x.XSetErrorHandler.restype = ctypes.c_void_p
        x.XSetErrorHandler(handler)
        dpy = x.XOpenDisplay(self.display_name.encode() or None)
        if not dpy:
            self.error = f"cannot open the X display {self.display_name!r}"
            self._ready.set()
            return
        try:
            root = x.XDefaultRootWindow(dpy)
            keycode = x.XKeysymToKeycode(dpy, x.XStringToKeysym(self.key.encode()))
            if not keycode:
                self.error = f"no key {self.key!r} on this keyboard"
                return
            for extra in _LOCK_MASKS:
                x.XGrabKey(dpy, keycode, self.mods | extra, root, 1, _GRAB_MODE_ASYNC, _GRAB_MODE_ASYNC)
            x.XSync(dpy, 0)
            if self._errors:
                self.error = "another program already uses this shortcut"
                return
            self._ready.set()
            fd = x.XConnectionNumber(dpy)
            event = _XEvent()
            while not self._stop.is_set():
                readable, _, _ = select.select([fd], [], [], 0.25)
                while x.XPending(dpy):
                    x.XNextEvent(dpy, ctypes.byref(event))
                    if event.type == _KEY_PRESS and event.xkey.keycode == keycode:
                        try:
                            self.callback()
                        except Exception:
                            log.exception("global hotkey callback failed")
            for extra in _LOCK_MASKS:
                x.XUngrabKey(dpy, keycode, self.mods | extra, root)
        finally:
            self._ready.set()
            x.XCloseDisplay(dpy)


def portal_status(portal: "PortalShortcut") -> str:
    """The UI's sentence once the portal has answered."""
    if portal.bound:
        return f"System-wide hotkey {portal.trigger or portal.shortcut}: on (desktop portal)"
    return f"System-wide hotkey: not available ({portal.error}; {portal.shortcut} still works in this window)"


def start_global_hotkey(shortcut: str, callback: Callable[[], None],
                        on_status: Callable[[str], None] | None = None) -> tuple["X11Hotkey | PortalShortcut | None", str]:
    """Try to register `shortcut` system-wide. Returns (hotkey or None, a status sentence for the UI). Through
    the portal the desktop answers later: `on_status` then gets the new sentence (on another thread)."""
    if not sys.platform.startswith("linux"):
        return None, f"System-wide hotkey: not available on {sys.platform} yet (use {shortcut} in the window)"
    in_window = f"{shortcut} still works in this window"
    if wayland_session():
        from .portal_shortcuts import PortalShortcut
        from .portal_shortcuts import unavailable_reason as portal_reason

        why = portal_reason()
        if why:
            return None, f"System-wide hotkey: not available in this Wayland session ({why}; {in_window})"
        portal = PortalShortcut(shortcut, "What's on my screen? (Parley)", callback,
                                on_bound=lambda p: on_status(portal_status(p)) if on_status else None)
        portal.start(timeout=0)  # the desktop may ask the user: its answer comes through on_status
        return portal, f"System-wide hotkey {shortcut}: asked the desktop (portal), waiting for its answer"
    reason = unavailable_reason()
    if reason or not os.environ.get("DISPLAY"):
        reason = reason or "there is no X display"
        return None, "System-wide hotkey: not available here (" + reason.split(":")[0].rstrip(".").lower() + ")"
    hotkey = X11Hotkey(shortcut, callback)
    if hotkey.start():
        return hotkey, f"System-wide hotkey {shortcut}: on (X11)"
    return None, f"System-wide hotkey: not available ({hotkey.error})"
