"""Screenshots through the desktop portal (`org.freedesktop.portal.Screenshot`), for Wayland sessions where no
program may read the screen itself. Plain D-Bus over `jeepney`, as in `desktop/secret_service.py`. No Qt.

A portal call does not answer at once: the method returns the path of a Request object, and the answer comes
later as that Request's `Response(u code, a{sv} results)` signal (code 0: done, 1: the user cancelled, 2: failed
or denied). The Request's path is known in advance from our unique bus name and the `handle_token` we pass, so
the match for the signal is added before the call and no answer can slip past.

    path = take_screenshot()            # non-interactive first; the desktop's dialog if that is refused
    grab = portal_grab()                # the same `Grab` the X11 path gives: the pipeline takes it as it is

Errors are `PortalError` (a `CaptureError`) with a sentence for the user. Blocking: run it off the UI thread.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from .screen_capture import CaptureError, Grab

log = logging.getLogger(__name__)

BUS_NAME = "org.freedesktop.portal.Desktop"
OBJECT_PATH = "/org/freedesktop/portal/desktop"
SCREENSHOT_IFACE = "org.freedesktop.portal.Screenshot"
REQUEST_IFACE = "org.freedesktop.portal.Request"
PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"
#: A call that starts the portal by D-Bus activation can take a few seconds.
CALL_TIMEOUT_S = 10.0
#: The portal may ask the user first ("Allow screenshots?"), or show its own screenshot dialog.
RESPONSE_TIMEOUT_S = 120.0
#: A screenshot larger than this is refused before it is decoded (8K × 8K).
MAX_PIXELS = 64_000_000

ADVICE = "Take a screenshot with your desktop's tool and paste or drop it here."


class PortalError(CaptureError):
    """The portal could not give a screenshot; `str(error)` is a sentence for the user."""


class PortalUnavailable(PortalError):
    """No portal, or a portal without the interface asked for (the caller may try another way)."""


class PortalCancelled(PortalError):
    """The user cancelled the portal's dialog."""


class PortalRefused(PortalError):
    """The portal answered "failed or denied"."""


def bus_reachable(environ: dict[str, str] | None = None) -> bool:
    """Whether a session bus can be found at all (without connecting)."""
    env = os.environ if environ is None else environ
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return True
    runtime = env.get("XDG_RUNTIME_DIR")
    return bool(runtime) and Path(runtime, "bus").exists()


class PortalBus:
    """One session-bus connection to the desktop portal, with the Request/Response dance."""

    def __init__(self, timeout: float = CALL_TIMEOUT_S) -> None:
        from jeepney.io.blocking import open_dbus_connection

        self.timeout = timeout
        try:
            self.conn = open_dbus_connection(bus="SESSION")
        except Exception as exc:  # no session bus, a dead socket, a refused authentication
            raise PortalUnavailable(
                f"The desktop portal cannot be reached: there is no D-Bus session bus ({type(exc).__name__}: {exc})."
            ) from None

    def __enter__(self) -> "PortalBus":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError as exc:  # the bus went away first: nothing left to close
            log.debug("closing the portal's bus connection: %s", exc)

    def call(self, interface: str, method: str, signature: str | None = None, body: tuple = (), path: str = OBJECT_PATH):
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg

        msg = new_method_call(DBusAddress(path, bus_name=BUS_NAME, interface=interface), method, signature, body)
        try:
            return unwrap_msg(self.conn.send_and_get_reply(msg, timeout=self.timeout))
        except DBusErrorResponse as exc:
            detail = " ".join(map(str, exc.data)).strip()
            if exc.name in ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"):
                raise PortalUnavailable("No desktop portal (xdg-desktop-portal) is running on the session bus.") from None
            if exc.name in ("org.freedesktop.DBus.Error.UnknownMethod", "org.freedesktop.DBus.Error.UnknownInterface"):
                raise PortalUnavailable(f"The desktop portal has no {interface}.{method}.") from None
            raise PortalError(f"The desktop portal refused {method}: {exc.name} {detail}".strip()) from None
        except TimeoutError:
            raise PortalUnavailable(f"The desktop portal did not answer {method} within {self.timeout:g} s.") from None
        except OSError as exc:
            raise PortalUnavailable(f"The connection to the desktop portal broke ({exc}).") from None

    def version(self, interface: str) -> int | None:
        """The portal's version of `interface`, or None when the portal does not offer it (a frontend without a
        backend for it answers "No such interface")."""
        try:
            (value,) = self.call(PROPERTIES_IFACE, "Get", "ss", (interface, "version"))
        except PortalUnavailable:
            raise
        except PortalError as exc:  # the frontend answers InvalidArgs "No such interface"
            if "InvalidArgs" in str(exc) or "UnknownProperty" in str(exc) or "UnknownInterface" in str(exc):
                return None
            raise
        return int(value[1])

    def token(self) -> str:
        return "parley_" + secrets.token_hex(8)

    def request_path(self, token: str) -> str:
        sender = self.conn.unique_name.lstrip(":").replace(".", "_")
        return f"{OBJECT_PATH}/request/{sender}/{token}"

    def request(self, interface: str, method: str, signature: str, body_for_token, timeout: float = RESPONSE_TIMEOUT_S) -> tuple[int, dict]:
        """Call a portal method that answers through a Request: `body_for_token(token)` gives the call's body
        (with the token as its options' `handle_token`). Returns (response code, results without variants)."""
        from jeepney import HeaderFields, MatchRule

        token = self.token()
        expected = self.request_path(token)
        local = MatchRule(type="signal", interface=REQUEST_IFACE, member="Response")
        with self.conn.filter(local) as signals:
            self._add_match(MatchRule(type="signal", interface=REQUEST_IFACE, member="Response", path=expected))
            (handle,) = self.call(interface, method, signature, body_for_token(token))
            if handle != expected:  # a portal older than the handle_token scheme: follow the path it gave
                self._add_match(MatchRule(type="signal", interface=REQUEST_IFACE, member="Response", path=handle))
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._close_request(handle)
                    raise PortalError(f"The desktop did not answer the {method} request within {timeout:g} s.")
                try:
                    msg = self.conn.recv_until_filtered(signals, timeout=remaining)
                except TimeoutError:
                    continue
                except OSError as exc:
                    raise PortalError(f"The connection to the desktop portal broke ({exc}).") from None
                if msg.header.fields.get(HeaderFields.path) != handle:
                    continue
                code, results = msg.body
                return int(code), {k: v[1] for k, v in results.items()}

    def _add_match(self, rule) -> None:
        from jeepney import message_bus
        from jeepney.wrappers import unwrap_msg

        unwrap_msg(self.conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=self.timeout))

    def _close_request(self, handle: str) -> None:
        try:
            self.call(REQUEST_IFACE, "Close", path=handle)
        except PortalError as exc:  # the request had ended already: the dialog is gone either way
            log.debug("closing portal request %s: %s", handle, exc)


def screenshot_version() -> int | None:
    """The portal's Screenshot version, or None when it has none. Raises PortalUnavailable without a portal."""
    with PortalBus() as bus:
        return bus.version(SCREENSHOT_IFACE)


def take_screenshot(timeout: float = RESPONSE_TIMEOUT_S) -> Path:
    """Ask the portal for a screenshot of the whole desktop: without a dialog first (`interactive: false`), then,
    if that is refused, with the desktop's own screenshot dialog. Returns the file the portal wrote."""
    with PortalBus() as bus:
        if bus.version(SCREENSHOT_IFACE) is None:
            raise PortalUnavailable(
                "The desktop portal here has no Screenshot support (its backend for this desktop is missing: "
                "xdg-desktop-portal-gnome, -kde or -wlr)."
            )
        code, results = 2, {}
        for interactive in (False, True):
            code, results = bus.request(
                SCREENSHOT_IFACE, "Screenshot", "sa{sv}",
                lambda token, i=interactive: ("", {"handle_token": ("s", token), "interactive": ("b", i), "modal": ("b", True)}),
                timeout,
            )
            if code != 2:
                break
        if code == 1:
            raise PortalCancelled("The screenshot was cancelled in the desktop's dialog; nothing was sent.")
        if code != 0:
            raise PortalRefused(
                "The desktop refused the screenshot (its portal answered “failed or denied”). If screenshots "
                "are turned off for Parley, allow them in your desktop's privacy settings. " + ADVICE
            )
    return _local_path(results.get("uri"))


def _local_path(uri: object) -> Path:
    if not isinstance(uri, str) or not uri:
        raise PortalError("The desktop portal said the screenshot was taken but gave no file.")
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise PortalError(f"The desktop portal gave the screenshot as {uri[:200]!r}, not as a local file.")
    return Path(unquote(parsed.path))


def read_grab(path: Path, label: str = "the screen") -> Grab:
    """The portal's file as a `Grab` (BGRA pixels), so the image pipeline and the region chooser take it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise PortalError(f"The desktop's screenshot is too large ({width}×{height} pixels).")
            bgra = image.convert("RGBA").tobytes("raw", "BGRA")
    except PortalError:
        raise
    except FileNotFoundError:
        raise PortalError(f"The desktop portal's screenshot file {str(path)[:200]} does not exist.") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PortalError(f"The desktop portal's screenshot could not be read ({type(exc).__name__}: {str(exc)[:150]}).") from None
    return Grab(bgra, width, height, 0, 0, label)


def portal_grab(region: tuple[int, int, int, int] | None = None, timeout: float = RESPONSE_TIMEOUT_S) -> Grab:
    """A screenshot of the whole desktop through the portal (or of `region` in its pixels)."""
    grab = read_grab(take_screenshot(timeout))
    if region is None:
        return grab
    left, top, width, height = region
    right, bottom = min(left + width, grab.width), min(top + height, grab.height)
    left, top = max(left, 0), max(top, 0)
    if right <= left or bottom <= top:
        raise PortalError("The region is outside the screen.")
    rows = [bytes(grab.bgra[(y * grab.width + left) * 4:(y * grab.width + right) * 4]) for y in range(top, bottom)]
    return Grab(b"".join(rows), right - left, bottom - top, left, top, "a screen region")
