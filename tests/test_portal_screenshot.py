""""What's on my screen?" in a Wayland session, through a real desktop portal: headless sway with
xdg-desktop-portal and its wlr backend (tests/wayland_fixture.py), a Qt window on that screen showing known
text on a known colour, and the portal's screenshot read back (pixels and Tesseract OCR). GlobalShortcuts:
the wlr portal has none (the menu says so, from Parley's own window on that desktop), and KDE's portal backend
under kwin_wayland's virtual backend binds it and reports its activation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from desktop.media import screen_capture
from desktop.media.portal_screenshot import PortalError, PortalRefused, PortalUnavailable, _local_path, read_grab
from desktop.media.screen_capture import CaptureError, CaptureTarget
from tests import wayland_fixture
from tests.wayland_fixture import WaylandDesktop

SCREEN_TEXT = "PARLEY WAYLAND 4821"
BLUE = (0x10, 0x60, 0xE0)


@pytest.fixture(scope="module")
def desktop():
    absent = wayland_fixture.missing()
    if absent:
        pytest.skip(f"not installed: {', '.join(absent)} (./dev test installs them)")
    wl = WaylandDesktop().start()
    window = None
    try:
        window = wl.show(SCREEN_TEXT, "#%02x%02x%02x" % BLUE)
        yield wl
    finally:
        if window is not None:
            window.terminate()
            window.wait(5)
        wl.stop()


@pytest.fixture
def on_wayland(desktop, monkeypatch):
    """This process as a client of that Wayland session: no X display, its bus and runtime dir."""
    monkeypatch.delenv("DISPLAY", raising=False)
    for key in ("WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "XDG_SESSION_TYPE", "XDG_CURRENT_DESKTOP"):
        monkeypatch.setenv(key, desktop.env[key])
    return desktop


def _ocr(grab, tmp_path: Path) -> str:
    from PIL import Image

    path = tmp_path / "grab.png"
    Image.frombytes("RGBA", (grab.width, grab.height), bytes(grab.bgra), "raw", "BGRA").convert("RGB").save(path)
    return subprocess.run(["tesseract", str(path), "-", "--psm", "6"], capture_output=True, text=True, timeout=60).stdout


def test_the_portal_screenshot_holds_what_is_on_the_wayland_screen(on_wayland, tmp_path):
    assert screen_capture.uses_portal() and screen_capture.unavailable_reason() is None
    grab = screen_capture.capture()
    assert (grab.width, grab.height, grab.label) == (wayland_fixture.WIDTH, wayland_fixture.HEIGHT, "the screen")
    # The window fills the screen with blue (BGRA order in the grab); the text is in the middle, in white.
    corner = tuple(grab.bgra[(20 * grab.width + 20) * 4:(20 * grab.width + 20) * 4 + 3])
    assert corner == (BLUE[2], BLUE[1], BLUE[0]), corner
    text = " ".join(_ocr(grab, tmp_path).split())  # tesseract-ocr: in ./dev's test packages
    assert SCREEN_TEXT in text, text
    prepared = screen_capture.capture_prepared(CaptureTarget("cursor"))
    assert (prepared.width, prepared.height) == (1024, 576)
    assert (prepared.source_width, prepared.source_height) == (wayland_fixture.WIDTH, wayland_fixture.HEIGHT)
    region = screen_capture.capture(CaptureTarget("region", region=(1200, 700, 200, 200)))
    assert (region.width, region.height, region.left, region.top) == (80, 20, 1200, 700)
    with pytest.raises(CaptureError, match="outside the screen"):
        screen_capture.capture(CaptureTarget("region", region=(2000, 2000, 10, 10)))


def test_whats_on_my_screen_and_a_dragged_region_go_through_the_portal(qtbot, on_wayland):
    from desktop.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    controller = window.attachments
    handled: list = []
    controller.finished.connect(handled.append)
    controller.capture_screen()
    qtbot.waitUntil(lambda: len(handled) == 1, timeout=20000)
    assert handled[0].errors == [] and len(handled[0].images) == 1
    assert (handled[0].images[0].source_width, handled[0].images[0].source_height) == (wayland_fixture.WIDTH, wayland_fixture.HEIGHT)
    assert "Not connected" in window.notices[-1].message
    controller.capture_region()
    qtbot.waitUntil(lambda: len(handled) == 2, timeout=20000)
    assert (controller.region_selector.grab_image.width(), controller.region_selector.grab_image.height()) == (wayland_fixture.WIDTH, wayland_fixture.HEIGHT)
    controller.region_selector.close()
    controller._fill_screen_menu()
    texts = [a.text() for a in controller.screen_menu.actions()]
    assert "Wayland: grabs go through the desktop portal (the whole desktop)" in texts


def test_a_refused_screenshot_gives_a_clear_message(qtbot, on_wayland):
    """The portal's backend fails (here: its grim is gone), so the portal answers "failed or denied" to the
    screenshot without a dialog and to the one with; Parley says so and sends nothing."""
    from desktop.ui.main_window import MainWindow

    on_wayland.restart_portal_backend(without=("grim",))
    try:
        with pytest.raises(PortalRefused, match="The desktop refused the screenshot"):
            screen_capture.capture()
        window = MainWindow()
        qtbot.addWidget(window)
        handled: list = []
        window.attachments.finished.connect(handled.append)
        window.attachments.capture_screen()
        qtbot.waitUntil(lambda: len(handled) == 1, timeout=20000)
        assert handled[0].images == [] and "refused the screenshot" in handled[0].errors[0]
        assert window.notices[-1].level == "error" and "paste or drop it here" in window.notices[-1].message
    finally:
        on_wayland.restart_portal_backend()
    assert screen_capture.capture().width == wayland_fixture.WIDTH


_PARLEY_ON_WAYLAND = textwrap.dedent(
    """
    import sys
    from PySide6.QtWidgets import QApplication
    from desktop.ui.main_window import MainWindow
    app = QApplication(sys.argv)
    print("PLATFORM", app.platformName(), flush=True)
    window = MainWindow()
    window.show()
    window.attachments._fill_screen_menu()
    for action in window.attachments.screen_menu.actions():
        print("MENU", action.text(), flush=True)
    """
)


def test_the_menu_says_why_the_system_wide_shortcut_is_unavailable(desktop):
    """Parley's own window on the Wayland desktop (Qt's wayland platform): the portal there has no
    GlobalShortcuts (wlroots' backend offers none), and the screen button's menu says so."""
    env = dict(desktop.env, QT_QPA_PLATFORM="wayland", PARLEY_DISABLE_KEYRING="1", PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    done = subprocess.run([sys.executable, "-c", _PARLEY_ON_WAYLAND], env=env, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    lines = done.stdout.splitlines()
    assert "PLATFORM wayland" in lines, (done.stdout, done.stderr[-3000:])
    menu = [line.removeprefix("MENU ") for line in lines if line.startswith("MENU ")]
    assert ("System-wide hotkey: not available in this Wayland session (the desktop portal offers no GlobalShortcuts "
            "here; Ctrl+Shift+S still works in this window)") in menu, menu
    assert "Wayland: grabs go through the desktop portal (the whole desktop)" in menu


def test_no_portal_and_bad_answers_give_clear_messages(monkeypatch, tmp_path):
    wayland = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}
    reason = screen_capture.unavailable_reason(wayland)
    assert reason and "desktop portal" in reason and "no D-Bus session bus" in reason
    assert screen_capture.unavailable_reason(dict(wayland, DISPLAY=":0")) is None  # XWayland is tried then
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    with pytest.raises(PortalUnavailable, match="no D-Bus session bus"):
        screen_capture.capture()
    not_png = tmp_path / "shot.png"
    not_png.write_text("not an image")
    with pytest.raises(PortalError, match="could not be read"):
        read_grab(not_png)
    with pytest.raises(PortalError, match="does not exist"):
        read_grab(tmp_path / "gone.png")
    with pytest.raises(PortalError, match="not as a local file"):
        _local_path("https://example.invalid/shot.png")
    assert _local_path("file:///home/u/Pictures/Screenshot%20from%20today.png") == Path("/home/u/Pictures/Screenshot from today.png")


# ---------------------------------------------------------------------------------------- GlobalShortcuts (KDE)
@pytest.fixture(scope="module")
def kde_desktop():
    absent = wayland_fixture.missing(wayland_fixture.KDE_REQUIRED)
    if absent:
        pytest.skip(f"not installed: {', '.join(absent)} (./dev test installs them)")
    kde = WaylandDesktop().start_kde()
    try:
        yield kde
    finally:
        kde.stop()


def test_the_system_wide_shortcut_through_the_globalshortcuts_portal(kde_desktop, monkeypatch):
    from desktop.media.global_hotkey import start_global_hotkey
    from desktop.media.portal_shortcuts import SHORTCUT_ID

    monkeypatch.delenv("DISPLAY", raising=False)
    for key in ("WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "XDG_SESSION_TYPE", "XDG_CURRENT_DESKTOP"):
        monkeypatch.setenv(key, kde_desktop.env[key])
    pressed = threading.Event()
    statuses: list[str] = []
    answered = threading.Event()
    hotkey, status = start_global_hotkey("Ctrl+Shift+S", pressed.set, lambda s: (statuses.append(s), answered.set()))
    try:
        assert hotkey is not None and "asked the desktop" in status
        assert answered.wait(15), kde_desktop.log_tail("portal-kde")
        assert statuses == ["System-wide hotkey Ctrl+Shift+S: on (desktop portal)"]
        # KDE names the component after the session (Parley is not sandboxed, so it has no app id).
        component = hotkey.session.rsplit("/", 1)[-1]
        assert component in kde_desktop.kde_components()
        assert not pressed.is_set()
        kde_desktop.press_kde_shortcut(component, SHORTCUT_ID)
        assert pressed.wait(5)
    finally:
        hotkey.stop()
