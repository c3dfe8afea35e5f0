"""Nothing lost: the transcript is saved as it happens, survives `kill -9`, and the next start offers it back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop.core.actions import ItemChanged, ItemRemoved
from desktop.core.conversation import Conversation, ImageInfo
from desktop.core.usage import TokenUsage
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.transcript_store import TranscriptStore, conversations_dir, latest_saved, read_conversation
from tests.conftest import AUDIO, ROOT


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data"


def _conversation() -> Conversation:
    c = Conversation()
    c.place("item_u1", None, role="user", text="hello there", text_final=True, status="completed", has_audio=True)
    c.place("item_a1", "item_u1", role="assistant", text="Hi! How can I help?", text_final=True, status="completed", has_audio=True,
            usage=TokenUsage(input_tokens=40, output_tokens=90, output_audio=80, responses=1))
    return c


def test_store_round_trip_keeps_text_and_image_metadata_only(data_home):
    c = _conversation()
    store = TranscriptStore(c, provider="offline engine")
    for item in c:
        store.on_notification(ItemChanged(item.item_id))
    photo = c.place("item_u2", "item_a1", role="user", text="what is this?", text_final=True, status="completed")
    photo.images = [ImageInfo(800, 600, 123_456, "image/jpeg", "screen")]
    store.on_notification(ItemChanged("item_u2"))
    store.close()
    assert store.path.parent == conversations_dir() and str(store.path).startswith(str(data_home))
    saved = read_conversation(store.path)
    assert [(i.item_id, i.role, i.text) for i in saved.items] == [(i.item_id, i.role, i.text) for i in c]
    assert saved.items[2].images == [ImageInfo(800, 600, 123_456, "image/jpeg", "screen")]
    assert saved.items[1].usage == TokenUsage(input_tokens=40, output_tokens=90, output_audio=80, responses=1)
    assert saved.items[0].usage is None
    raw = store.path.read_text()
    assert "base64" not in raw and "data:image" not in raw
    for line in raw.splitlines():
        json.loads(line)


def test_streaming_text_is_throttled_and_settled_turns_written_at_once(data_home):
    c = Conversation()
    store = TranscriptStore(c)
    item = c.place("item_a", None, role="assistant", text="", status="in_progress")
    store.item_changed("item_a", now=100.0)
    for n in range(50):  # 50 transcript deltas within half a second
        item.text += f"word{n} "
        store.item_changed("item_a", now=100.0 + n * 0.01)
    streamed = store.lines_written
    assert streamed <= 3, streamed  # meta + first + nothing more within the interval
    item.text_final, item.status = True, "completed"
    store.item_changed("item_a", now=100.6)
    saved = read_conversation(store.path)
    assert saved.items[0].text == item.text and saved.items[0].text_final
    # A transcript placed before an answer already saved is saved in its place.
    c.place("item_u", None, role="user", text="tell me", text_final=True, status="completed")
    store.item_changed("item_u", now=101.0)
    assert [i.item_id for i in read_conversation(store.path).items] == [i.item_id for i in c]
    c.delete("item_u")
    store.on_notification(ItemRemoved("item_u"))
    assert [i.item_id for i in read_conversation(store.path).items] == ["item_a"]


def test_torn_last_line_is_skipped_and_answered_conversations_are_not_offered(data_home):
    c = _conversation()
    store = TranscriptStore(c)
    for item in c:
        store.item_changed(item.item_id)
    store.close()
    with open(store.path, "a") as f:
        f.write('{"kind": "item", "item": {"item_id": "item_x", "role": "us')  # killed mid-write
    saved = latest_saved()
    assert saved is not None and [i.item_id for i in saved.items] == ["item_u1", "item_a1"]
    assert saved.summary().startswith("2 turns")


def _completed_turns(path: Path) -> list[tuple[str, str]]:
    try:
        items = read_conversation(path).items
    except OSError:
        return []
    return [(i.role, i.text) for i in items if i.text_final and i.status == "completed" and i.text]


@pytest.mark.slow
def test_kill_9_mid_conversation_then_restart_offers_every_completed_turn(data_home, qtbot, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(data_home), PARLEY_DISABLE_KEYRING="1")
    env.pop("OPENAI_API_KEY", None)
    log_path = tmp_path / "app.log"
    with open(log_path, "wb") as log_file:
        app = subprocess.Popen(
            [sys.executable, "-m", "desktop.ui.app", "--offline", "--no-speaker", "--audio-in", str(AUDIO / "hello_weather.wav")],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            turns: list[tuple[str, str]] = []
            files: list[Path] = []
            while time.monotonic() < deadline and app.poll() is None:
                files = sorted((data_home / "Parley" / "conversations").glob("*.jsonl"))
                turns = _completed_turns(files[-1]) if files else []
                if [r for r, _ in turns][:2] == ["user", "assistant"]:
                    break
                time.sleep(0.2)
            assert app.poll() is None, log_path.read_text()[-3000:]
            assert [r for r, _ in turns][:2] == ["user", "assistant"], log_path.read_text()[-3000:]
            os.kill(app.pid, signal.SIGKILL)  # mid-conversation: the mic keeps streaming, the engine is live
            app.wait(10)
        finally:
            if app.poll() is None:
                app.kill()
            try:
                os.killpg(app.pid, signal.SIGKILL)  # the engine child, orphaned by the kill
            except ProcessLookupError:
                pass
    assert app.returncode == -signal.SIGKILL
    # Everything completed before the kill is on disk.
    saved_turns = _completed_turns(files[-1])
    assert saved_turns[: len(turns)] == turns
    assert "weather" in turns[0][1].lower()

    # The next start offers it back; restoring shows every completed turn in the transcript.
    from desktop.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    session = LiveSession(SessionOptions(choose_provider(environ={}), use_speaker=False))
    window.attach(session)
    ui = window.reliability_ui
    assert ui.offered is not None and ui.restore_banner.isVisibleTo(window)
    assert ui.offered.path == files[-1]
    window.show()
    window.grab().save(str(tmp_path / "restore_offer.png"))
    ui.restore_button.click()
    text = window.transcript_text()
    for _, said in turns:
        assert said in text
    assert not ui.restore_banner.isVisibleTo(window)
    # The restored turns continue in this run's file; the old one is not offered again.
    ui.close()
    assert _completed_turns(ui.store.path)[: len(turns)] == turns
    assert latest_saved(exclude=ui.store.path) is None
