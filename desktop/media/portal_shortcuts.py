"""A system-wide shortcut through the desktop portal (`org.freedesktop.portal.GlobalShortcuts`), for Wayland
sessions, where no program may grab keys itself. jeepney, as `portal_screenshot`. No Qt.

The dance: `CreateSession` (answered through a Request with the session's path), `BindShortcuts` on it (the
desktop may ask the user to confirm or change the keys, so it is answered through a Request too), then the
portal's `Activated(o session, s shortcut_id, t timestamp, a{sv})` signal each time the keys are pressed,
anywhere on the desktop. Closing the session releases the shortcut.

Only some desktops' portal backends offer GlobalShortcuts (KDE Plasma's does; wlroots' does not): where the
portal lacks it, `unavailable_reason()` says so, and the UI shows that sentence. The callback is called on
the listener's thread, so it must only hand over (e.g. emit a Qt signal).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from .portal_screenshot import OBJECT_PATH, PortalBus, PortalError, PortalUnavailable

log = logging.getLogger(__name__)

SHORTCUTS_IFACE = "org.freedesktop.portal.GlobalShortcuts"
SESSION_IFACE = "org.freedesktop.portal.Session"
SHORTCUT_ID = "whats-on-my-screen"


def unavailable_reason() -> str | None:
    """Why the portal cannot give a system-wide shortcut here (a short phrase), or None when it offers one."""
    try:
        with PortalBus(timeout=3.0) as bus:
            if bus.version(SHORTCUTS_IFACE) is None:
                return "the desktop portal offers no GlobalShortcuts here"
    except PortalUnavailable as exc:
        return str(exc).rstrip(".").replace("The desktop portal", "the desktop portal", 1).replace("No desktop portal", "no desktop portal", 1)
    except PortalError as exc:
        return str(exc).rstrip(".")
    return None


def portal_trigger(shortcut: str) -> str:
    """"Ctrl+Shift+S" in the shortcuts specification's form (as the XDG shortcut names: "CTRL+SHIFT+s")."""
    *mods, key = [p.strip() for p in shortcut.split("+")]
    return "+".join([m.upper() for m in mods] + [key.lower()])


class PortalShortcut:
    """One shortcut bound through the portal, listened to on a thread of its own."""

    def __init__(self, shortcut: str, description: str, callback: Callable[[], None],
                 on_bound: Callable[["PortalShortcut"], None] | None = None) -> None:
        self.shortcut = shortcut
        self.description = description
        self.callback = callback
        #: Called (on the listener's thread) once the desktop has bound the shortcut or refused it.
        self.on_bound = on_bound
        self.session: str | None = None
        #: What the desktop bound it to, as it describes it (it may differ from what was asked).
        self.trigger: str | None = None
        self.error: str | None = None
        self._bus: PortalBus | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 120.0) -> bool:
        """Bind it (the desktop may ask the user) and start listening; waits up to `timeout` (0: not at all,
        `on_bound` tells). False with `error` set when refused (or not bound yet)."""
        self._thread = threading.Thread(target=self._run, name="parley-portal-shortcut", daemon=True)
        self._thread.start()
        if timeout:
            self._ready.wait(timeout)
        return self.bound

    @property
    def bound(self) -> bool:
        return self._ready.is_set() and self.error is None and self.session is not None and not self._stop.is_set()

    def _report(self) -> None:
        if not self._ready.is_set():
            self._ready.set()
            if self.on_bound is not None:
                try:
                    self.on_bound(self)
                except Exception:
                    log.exception("portal shortcut status callback failed")

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        from jeepney import HeaderFields, MatchRule

        try:
            self._bus = bus = PortalBus()
        except PortalError as exc:
            self.error = str(exc)
            self._report()
            return
        wanted = [(SHORTCUT_ID, {"description": ("s", self.description),
                                 "preferred_trigger": ("s", portal_trigger(self.shortcut))})]
        try:
            # The shortcuts go with CreateSession too: KDE Plasma 5.27's backend registers them only from there
            # (its BindShortcuts just opens the shortcut settings); the frontend passes options through.
            code, results = bus.request(
                SHORTCUTS_IFACE, "CreateSession", "a{sv}",
                lambda token: ({"handle_token": ("s", token), "session_handle_token": ("s", bus.token()),
                                "shortcuts": ("a(sa{sv})", wanted)},),
            )
            if code != 0 or not results.get("session_handle"):
                self.error = "the desktop did not open a shortcuts session"
                return
            self.session = str(results["session_handle"])
            activated = MatchRule(type="signal", interface=SHORTCUTS_IFACE, member="Activated", path=OBJECT_PATH)
            with bus.conn.filter(activated) as signals:
                bus._add_match(activated)
                code, results = bus.request(
                    SHORTCUTS_IFACE, "BindShortcuts", "oa(sa{sv})sa{sv}",
                    lambda token: (self.session, wanted, "", {"handle_token": ("s", token)}),
                )
                if code == 1:
                    self.error = "the desktop's dialog was cancelled"
                    return
                if code != 0:
                    self.error = "the desktop refused the shortcut"
                    return
                for shortcut_id, props in results.get("shortcuts", []):
                    if shortcut_id == SHORTCUT_ID:
                        described = props.get("trigger_description")
                        self.trigger = str(described[1]) if described else None
                self._report()
                while not self._stop.is_set():
                    try:
                        msg = bus.conn.recv_until_filtered(signals, timeout=0.25)
                    except TimeoutError:
                        continue
                    if msg.header.fields.get(HeaderFields.path) != OBJECT_PATH:
                        continue
                    session, shortcut_id = msg.body[0], msg.body[1]
                    if session == self.session and shortcut_id == SHORTCUT_ID:
                        try:
                            self.callback()
                        except Exception:
                            log.exception("portal shortcut callback failed")
        except (PortalError, OSError) as exc:
            self.error = str(exc)
        finally:
            if self.session is not None:
                try:
                    bus.call(SESSION_IFACE, "Close", path=self.session)
                except PortalError as exc:  # the portal closed it already (it went away, or the desktop ended it)
                    log.debug("closing the portal's shortcut session: %s", exc)
            bus.close()
            self._report()
