"""Screen capture under a real X server: Xvfb started here, known text drawn by a Qt window in a child process
(QT_QPA_PLATFORM=xcb), captured with mss, and read back by the engine's OCR through the whole app."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from desktop.media import screen_capture
from desktop.media.screen_capture import CaptureError, CaptureTarget, capture, capture_prepared, list_monitors, pointer_position

SCREEN_TEXT = "PARLEY SCREEN 7294"

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (./dev test installs it)")


def _free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


def start_xvfb(width: int = 1920, height: int = 1080) -> tuple[subprocess.Popen, str]:
    n = _free_display()
    # -noreset: the server must not reset when its last client disconnects (each grab is a client).
    proc = subprocess.Popen(
        ["Xvfb", f":{n}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-noreset"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    display = f":{n}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if Path(f"/tmp/.X11-unix/X{n}").exists():
            try:
                list_monitors(display)
                return proc, display
            except CaptureError:
                pass
        if proc.poll() is not None:
            raise RuntimeError(f"Xvfb exited with {proc.returncode}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("Xvfb did not start")


_LABEL_APP = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication, QLabel
    app = QApplication(sys.argv)
    label = QLabel(sys.argv[1])
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setStyleSheet("background: white; color: black; font-size: 110px; font-weight: bold;")
    label.setGeometry(0, 0, int(sys.argv[2]), int(sys.argv[3]))
    label.show()
    QTimer.singleShot(700, lambda: (print("READY", flush=True)))
    app.exec()
    """
)


def show_text(display: str, text: str, width: int, height: int) -> subprocess.Popen:
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    proc = subprocess.Popen([sys.executable, "-c", _LABEL_APP, text, str(width), str(height)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "READY" not in line:
        proc.kill()
        raise RuntimeError(f"the label window did not start: {proc.stderr.read()[-2000:]}")
    return proc


@pytest.fixture(scope="module")
def xscreen():
    """An Xvfb screen showing SCREEN_TEXT in a big label; yields the display name."""
    xvfb, display = start_xvfb()
    label = None
    try:
        label = show_text(display, SCREEN_TEXT, 1920, 1080)
        yield display
    finally:
        if label is not None:
            label.terminate()
            label.wait(5)
        xvfb.terminate()
        xvfb.wait(5)


def test_capture_the_screen_under_the_cursor(xscreen):
    assert [(m["width"], m["height"]) for m in list_monitors(xscreen)] == [(1920, 1080)]
    assert pointer_position(xscreen) is not None
    grab = capture(CaptureTarget("cursor"), display=xscreen)
    assert (grab.width, grab.height) == (1920, 1080)
    # The label is white with black text: the middle of the screen is mostly white, with some dark pixels.
    prepared = capture_prepared(CaptureTarget("cursor"), display=xscreen)
    assert (prepared.width, prepared.height) == (1024, 576)
    assert (prepared.source_width, prepared.source_height) == (1920, 1080)


def test_region_monitor_and_window_targets(xscreen):
    region = capture(CaptureTarget("region", region=(100, 50, 640, 360)), display=xscreen)
    assert (region.width, region.height, region.left, region.top) == (640, 360, 100, 50)
    clipped = capture(CaptureTarget("region", region=(1800, 1000, 500, 500)), display=xscreen)
    assert (clipped.width, clipped.height) == (120, 80)
    assert capture(CaptureTarget("monitor", monitor=1), display=xscreen).width == 1920
    with pytest.raises(CaptureError, match="no monitor 3"):
        capture(CaptureTarget("monitor", monitor=3), display=xscreen)
    # No window manager on a bare Xvfb: the active window is unknown, and the message says what to do.
    with pytest.raises(CaptureError, match="No window manager says which window is active"):
        capture(CaptureTarget("window"), display=xscreen)


def test_no_display_and_wayland_give_clear_messages(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    if sys.platform.startswith("linux"):
        with pytest.raises(CaptureError, match="no display to capture"):
            capture()
        assert "Wayland" in screen_capture.unavailable_reason({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"})
    with pytest.raises(CaptureError, match="could not be captured|Could not open"):
        capture(display=":199")  # nothing listens there


@pytest.mark.slow
def test_whats_on_my_screen_is_read_by_the_engine(qtbot, qapp, xscreen, monkeypatch):
    """The window's "What's on my screen?" grabs the Xvfb screen and the engine's OCR answer has the text."""
    from tests.qt_loop import close_qasync_loop, new_qasync_loop
    from PySide6.QtCore import Qt

    from desktop.providers import choose_provider
    from desktop.session import LiveSession, SessionOptions
    from desktop.ui.main_window import MainWindow
    from tests.protocol_oracle import validate_client_event

    monkeypatch.setenv("DISPLAY", xscreen)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    loop = new_qasync_loop(qapp)
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    session = LiveSession(SessionOptions(choose_provider(environ={}), use_speaker=False))
    session.record_sent = True
    window.attach(session)
    handled: list = []
    window.attachments.finished.connect(handled.append)

    async def wait_until(predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate():
            await asyncio.sleep(0.05)
        return predicate()

    async def scenario():
        assert await session.start()
        window.activateWindow()
        window.text_input.setFocus()
        qtbot.keyClick(window.text_input, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        assert await wait_until(lambda: handled, 30)
        answered = await wait_until(
            lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation), 90
        )
        answer = next((i.text for i in session.client.conversation if i.role == "assistant"), "")
        # No display: a clear message, nothing more sent.
        creates = len([e for e in session.sent_events if e["type"] == "conversation.item.create"])
        monkeypatch.delenv("DISPLAY")
        window.attachments.capture_screen()
        assert await wait_until(lambda: len(handled) == 2, 10)
        notice = window.notices[-1]
        creates_after = len([e for e in session.sent_events if e["type"] == "conversation.item.create"])
        await session.stop()
        return answered, answer, creates, creates_after, notice

    try:
        answered, answer, creates, creates_after, notice = loop.run_until_complete(scenario())
    finally:
        close_qasync_loop(loop)
    assert answered and handled[0].errors == [], handled[0].errors
    assert answer.startswith("The image is 1024 by 576 pixels."), answer
    assert "PARLEY SCREEN 7294" in answer, answer
    sent = [e for e in session.sent_events if e["type"] == "conversation.item.create"][0]
    parts = sent["item"]["content"]
    assert parts[0]["type"] == "input_image" and parts[1] == {"type": "input_text", "text": "What's on my screen?"}
    assert window.attachments.screen_action.shortcut().toString() == "Ctrl+Shift+S"
    assert creates == creates_after == 1
    assert notice.level == "error" and "no display to capture" in notice.message
    for event in session.sent_events:
        validate_client_event(event)


def test_drag_a_region(qtbot, xscreen, monkeypatch):
    """The region overlay shows a grab of all screens; a drag picks the region, which goes through the pipeline."""
    from PySide6.QtCore import QPoint, Qt

    from desktop.ui.main_window import MainWindow

    monkeypatch.setenv("DISPLAY", xscreen)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    controller = window.attachments
    handled: list = []
    controller.finished.connect(handled.append)
    controller.capture_region()
    qtbot.waitUntil(lambda: len(handled) == 1, timeout=20000)
    selector = controller.region_selector
    assert (selector.grab_image.width(), selector.grab_image.height()) == (1920, 1080)
    sx = 1920 / selector.width()
    sy = 1080 / selector.height()
    start, end = QPoint(40, 30), QPoint(240, 130)
    qtbot.mousePress(selector, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(selector, end)
    qtbot.mouseRelease(selector, Qt.MouseButton.LeftButton, pos=end)
    qtbot.waitUntil(lambda: len(handled) == 2, timeout=20000)
    batch = handled[1]
    assert batch.errors == [] and len(batch.images) == 1
    image = batch.images[0]
    assert (image.source_width, image.source_height) == (int(200 * sx), int(100 * sy))
    # No session attached: the window says so instead of sending.
    assert "Not connected" in window.notices[-1].message

    # Esc cancels: nothing prepared.
    controller.capture_region()
    qtbot.waitUntil(lambda: len(handled) == 3, timeout=20000)
    qtbot.keyClick(controller.region_selector, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: len(handled) == 4, timeout=5000)
    assert handled[3].images == [] and handled[3].errors == []


@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool is not installed (./dev test installs it)")
def test_system_wide_hotkey_on_x11(xscreen):
    """XGrabKey on the root window: a Ctrl+Shift+S typed anywhere on the X screen reaches the callback."""
    import threading

    from desktop.media.global_hotkey import X11Hotkey

    pressed = threading.Event()
    hotkey = X11Hotkey("Ctrl+Shift+S", pressed.set, display=xscreen)
    assert hotkey.start(), hotkey.error
    try:
        env = dict(os.environ, DISPLAY=xscreen)
        subprocess.run(["xdotool", "key", "ctrl+shift+s"], env=env, check=True, timeout=10)
        assert pressed.wait(5)
        # A second program grabbing the same combination is told it is taken.
        other = X11Hotkey("Ctrl+Shift+S", lambda: None, display=xscreen)
        assert not other.start() and "already uses" in (other.error or "")
        # Other keys do not fire it.
        pressed.clear()
        subprocess.run(["xdotool", "key", "ctrl+shift+a"], env=env, check=True, timeout=10)
        assert not pressed.wait(0.5)
    finally:
        hotkey.stop()
