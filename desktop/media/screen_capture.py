"""Screen capture with mss: the screen under the cursor (default), a chosen monitor, all monitors, the active
window, or a region. No Qt: the window decides whether to hide itself first and where the cursor is.

On Linux mss reads the X server. A Wayland session goes through the desktop portal instead
(`portal_screenshot`: the whole desktop, which the window and region targets are then cut from or fall back
to), and so does an X11 grab that fails while a Wayland display is there (XWayland). A missing display gives
`CaptureError` with a message for the user. The pointer and the active window are read with a few Xlib calls
via ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

from .image_pipeline import PipelineSettings, PreparedImage, prepare_bgra

KINDS = ("cursor", "monitor", "all", "window", "region")


class CaptureError(Exception):
    """A screen grab that failed; `str(error)` is a sentence for the user."""


class X11GrabFailed(CaptureError):
    """The X server could not be read at all (not a wrong choice of target): the portal may still work."""


@dataclass(frozen=True)
class CaptureTarget:
    #: "cursor": the monitor under the pointer; "monitor": `monitor` (1-based); "all": every monitor as one
    #: image; "window": the active window; "region": `region` (left, top, width, height) in screen pixels.
    kind: str = "cursor"
    monitor: int = 1
    region: tuple[int, int, int, int] | None = None
    #: Where the pointer is, if the caller knows (else it is asked from the X server).
    point: tuple[int, int] | None = None


@dataclass(frozen=True)
class Grab:
    bgra: bytes | bytearray
    width: int
    height: int
    left: int
    top: int
    #: "screen 1", "the active window", …: used in the transcript and messages.
    label: str


def wayland_session(environ: dict[str, str] | None = None) -> bool:
    """A Wayland session, where X11 grabs (on XWayland) see no native window: the portal is the way."""
    env = os.environ if environ is None else environ
    return sys.platform.startswith("linux") and (
        env.get("XDG_SESSION_TYPE", "").lower() == "wayland" or bool(env.get("WAYLAND_DISPLAY") and not env.get("DISPLAY"))
    )


def uses_portal(environ: dict[str, str] | None = None) -> bool:
    """Whether a grab goes through the desktop portal here (a Wayland session with a session bus)."""
    from .portal_screenshot import bus_reachable

    return wayland_session(environ) and bus_reachable(environ)


def unavailable_reason(environ: dict[str, str] | None = None) -> str | None:
    """Why screen capture cannot work here, or None when it should."""
    env = os.environ if environ is None else environ
    if sys.platform.startswith("linux"):
        if wayland_session(env) and not uses_portal(env) and not env.get("DISPLAY"):
            return (
                "Screen capture in a Wayland session goes through the desktop portal, and there is no D-Bus "
                "session bus to reach it. Take a screenshot with your desktop's tool and paste or drop it here."
            )
        if not env.get("DISPLAY") and not uses_portal(env):
            return "There is no display to capture (DISPLAY is not set)."
    return None


def _portal_capture(target: CaptureTarget) -> Grab:
    from .portal_screenshot import portal_grab

    if target.kind == "region":
        if not target.region:
            raise CaptureError("No region was chosen.")
        return portal_grab(target.region)
    grab = portal_grab()
    # The portal gives the whole desktop: no screen, pointer or window of its own to choose.
    return grab if target.kind == "all" else Grab(grab.bgra, grab.width, grab.height, 0, 0, "the screen")


def _mss(display: str | None):
    import mss

    kwargs: dict[str, Any] = {}
    if sys.platform.startswith("linux") and display:
        kwargs["display"] = display
    cls = getattr(mss, "MSS", None)
    return cls(**kwargs) if cls is not None else mss.mss(**kwargs)


def list_monitors(display: str | None = None) -> list[dict[str, int]]:
    """The monitors (mss order: index 1 is the first), each {left, top, width, height}."""
    reason = unavailable_reason()
    if reason and not display:
        raise CaptureError(reason)
    try:
        with _mss(display) as sct:
            return [dict(m) for m in sct.monitors[1:]]
    except Exception as exc:  # mss raises ScreenShotError, ctypes/OS errors
        raise CaptureError(f"Could not read the screen layout: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__)[:200]


def _monitor_at(monitors: list[dict[str, int]], x: int, y: int) -> int:
    for i, m in enumerate(monitors, start=1):
        if m["left"] <= x < m["left"] + m["width"] and m["top"] <= y < m["top"] + m["height"]:
            return i
    return 1


def capture(target: CaptureTarget | None = None, display: str | None = None) -> Grab:
    """Grab the target's pixels. Raises CaptureError with a user-facing message."""
    target = target or CaptureTarget()
    if target.kind not in KINDS:
        raise CaptureError(f"Unknown capture target {target.kind!r}.")
    if not display:
        reason = unavailable_reason()
        if reason:
            raise CaptureError(reason)
        if uses_portal():
            from .portal_screenshot import PortalUnavailable

            try:
                return _portal_capture(target)
            except PortalUnavailable:
                if not os.environ.get("DISPLAY"):
                    raise
            # No portal, but an X server (XWayland): try it, it sees at least its own windows.
        try:
            return _x11_capture(target, display)
        except X11GrabFailed as exc:
            # An X11 grab that fails next to a Wayland display (XWayland refusing): the portal may still.
            from .portal_screenshot import PortalError, bus_reachable

            if not (sys.platform.startswith("linux") and os.environ.get("WAYLAND_DISPLAY") and bus_reachable()):
                raise
            try:
                return _portal_capture(target)
            except PortalError as portal_exc:
                raise CaptureError(f"{exc} The desktop portal could not either: {portal_exc}") from None
    return _x11_capture(target, display)


def _x11_capture(target: CaptureTarget, display: str | None) -> Grab:
    try:
        with _mss(display) as sct:
            monitors = [dict(m) for m in sct.monitors]
            if len(monitors) < 2:
                raise CaptureError("No monitor was found to capture.")
            if target.kind == "all":
                box, label = monitors[0], "all screens"
            elif target.kind == "monitor":
                if not 1 <= target.monitor < len(monitors):
                    raise CaptureError(f"There is no monitor {target.monitor}; this display has {len(monitors) - 1}.")
                box, label = monitors[target.monitor], f"screen {target.monitor}"
            elif target.kind == "cursor":
                point = target.point or pointer_position(display)
                index = _monitor_at(monitors[1:], *point) if point else 1
                box, label = monitors[index], f"screen {index}" if len(monitors) > 2 else "screen"
            elif target.kind == "window":
                geometry = active_window_geometry(display)
                box, label = _clip(geometry, monitors[0]), "the active window"
            else:
                if not target.region:
                    raise CaptureError("No region was chosen.")
                left, top, width, height = target.region
                box, label = _clip({"left": left, "top": top, "width": width, "height": height}, monitors[0]), "a screen region"
            if box["width"] <= 0 or box["height"] <= 0:
                raise CaptureError(f"The {label} is outside the screen.")
            shot = sct.grab(box)
            return Grab(shot.raw, shot.width, shot.height, box["left"], box["top"], label)
    except CaptureError:
        raise
    except Exception as exc:  # mss.ScreenShotError, OSError from ctypes, missing libraries
        raise X11GrabFailed(f"The screen could not be captured: {_reason(exc)}") from None


def capture_prepared(target: CaptureTarget | None = None, settings: PipelineSettings | None = None, display: str | None = None) -> PreparedImage:
    """Grab and run the image pipeline: what "what's on my screen" sends."""
    grab = capture(target, display)
    return prepare_bgra(grab.bgra, grab.width, grab.height, grab.label, settings)


def _clip(box: dict[str, int], screen: dict[str, int]) -> dict[str, int]:
    left = max(box["left"], screen["left"])
    top = max(box["top"], screen["top"])
    right = min(box["left"] + box["width"], screen["left"] + screen["width"])
    bottom = min(box["top"] + box["height"], screen["top"] + screen["height"])
    return {"left": left, "top": top, "width": right - left, "height": bottom - top}


# ------------------------------------------------------------------------------------------ a little Xlib
class _Xlib:
    """The few Xlib calls mss does not offer: pointer position and the active window."""

    _lock = threading.Lock()
    _lib: Any = None
    _handler: Any = None

    @classmethod
    def lib(cls):
        with cls._lock:
            if cls._lib is None:
                name = ctypes.util.find_library("X11")
                if not name:
                    raise CaptureError("The X11 library (libX11) is not installed.")
                lib = ctypes.cdll.LoadLibrary(name)
                d, w, ul = ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong
                pi, pu, pw = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(w)
                lib.XOpenDisplay.argtypes, lib.XOpenDisplay.restype = [ctypes.c_char_p], d
                lib.XCloseDisplay.argtypes = [d]
                lib.XDefaultRootWindow.argtypes, lib.XDefaultRootWindow.restype = [d], w
                lib.XQueryPointer.argtypes = [d, w, pw, pw, pi, pi, pi, pi, pu]
                lib.XInternAtom.argtypes, lib.XInternAtom.restype = [d, ctypes.c_char_p, ctypes.c_int], ul
                lib.XGetWindowProperty.argtypes = [
                    d, w, ul, ctypes.c_long, ctypes.c_long, ctypes.c_int, ul,
                    ctypes.POINTER(ul), pi, ctypes.POINTER(ul), ctypes.POINTER(ul), ctypes.POINTER(ctypes.c_void_p),
                ]
                lib.XFree.argtypes = [ctypes.c_void_p]
                lib.XGetGeometry.argtypes = [d, w, pw, pi, pi, pu, pu, pu, pu]
                lib.XTranslateCoordinates.argtypes = [d, w, w, ctypes.c_int, ctypes.c_int, pi, pi, pw]
                # Xlib's default error handler exits the process (e.g. on a window that just closed): ignore instead.
                handler_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
                cls._handler = handler_type(lambda _d, _e: 0)
                lib.XSetErrorHandler.argtypes = [handler_type]
                lib.XSetErrorHandler.restype = ctypes.c_void_p
                lib.XSetErrorHandler(cls._handler)
                cls._lib = lib
            return cls._lib

    def __init__(self, display: str | None) -> None:
        self.x = self.lib()
        self.dpy = self.x.XOpenDisplay((display or os.environ.get("DISPLAY", "")).encode() or None)
        if not self.dpy:
            raise X11GrabFailed(f"Could not open the X display {display or os.environ.get('DISPLAY', '')!r}.")
        self.root = self.x.XDefaultRootWindow(self.dpy)

    def __enter__(self) -> "_Xlib":
        return self

    def __exit__(self, *exc: object) -> None:
        self.x.XCloseDisplay(self.dpy)

    def pointer(self) -> tuple[int, int] | None:
        root, child = ctypes.c_ulong(), ctypes.c_ulong()
        rx, ry, wx, wy, mask = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_uint()
        ok = self.x.XQueryPointer(self.dpy, self.root, ctypes.byref(root), ctypes.byref(child),
                                  ctypes.byref(rx), ctypes.byref(ry), ctypes.byref(wx), ctypes.byref(wy), ctypes.byref(mask))
        return (rx.value, ry.value) if ok else None

    def active_window(self) -> int | None:
        atom = self.x.XInternAtom(self.dpy, b"_NET_ACTIVE_WINDOW", 1)
        if not atom:
            return None
        actual_type, actual_format = ctypes.c_ulong(), ctypes.c_int()
        nitems, after, prop = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_void_p()
        status = self.x.XGetWindowProperty(self.dpy, self.root, atom, 0, 1, 0, 33,  # XA_WINDOW
                                           ctypes.byref(actual_type), ctypes.byref(actual_format), ctypes.byref(nitems),
                                           ctypes.byref(after), ctypes.byref(prop))
        try:
            if status != 0 or not prop.value or nitems.value < 1:
                return None
            window = ctypes.cast(prop, ctypes.POINTER(ctypes.c_ulong))[0]
            return int(window) or None
        finally:
            if prop.value:
                self.x.XFree(prop)

    def geometry(self, window: int) -> dict[str, int] | None:
        root = ctypes.c_ulong()
        x, y = ctypes.c_int(), ctypes.c_int()
        w, h, border, depth = ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()
        if not self.x.XGetGeometry(self.dpy, window, ctypes.byref(root), ctypes.byref(x), ctypes.byref(y),
                                   ctypes.byref(w), ctypes.byref(h), ctypes.byref(border), ctypes.byref(depth)):
            return None
        rx, ry, child = ctypes.c_int(), ctypes.c_int(), ctypes.c_ulong()
        if not self.x.XTranslateCoordinates(self.dpy, window, self.root, 0, 0, ctypes.byref(rx), ctypes.byref(ry), ctypes.byref(child)):
            return None
        return {"left": rx.value, "top": ry.value, "width": int(w.value), "height": int(h.value)}


def pointer_position(display: str | None = None) -> tuple[int, int] | None:
    """Where the pointer is on the X screen, or None (not X11, or the server would not say)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with _Xlib(display) as x:
            return x.pointer()
    except (CaptureError, OSError):
        return None


def active_window_geometry(display: str | None = None) -> dict[str, int]:
    """The active window's box in screen pixels (from the window manager's _NET_ACTIVE_WINDOW)."""
    if not sys.platform.startswith("linux"):
        raise CaptureError("Capturing the active window is only supported on X11 so far; capture the screen instead.")
    with _Xlib(display) as x:
        window = x.active_window()
        if window is None:
            raise CaptureError("No window manager says which window is active; capture the screen or a region instead.")
        box = x.geometry(window)
        if box is None:
            raise CaptureError("The active window closed before it could be captured.")
        return box
