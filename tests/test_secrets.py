"""Secrets: the API key comes from the environment or the OS keyring, and never reaches logs, settings files,
saved transcripts or the event inspector. Keyring failures are plain words."""

from __future__ import annotations

import json

import os
import subprocess
import sys
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import pytest

from desktop import secrets
from desktop.providers import choose_provider
from desktop.transport.websocket_transport import Endpoint
from tests.conftest import ROOT

KEY = "sk-test-" + "Zq7" * 12  # looks like a key, is not one


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring backend that keeps passwords in this process only (CI machines have no Secret Service)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        self.store.pop((service, username), None)


@pytest.fixture
def memory_keyring(monkeypatch):
    monkeypatch.delenv("PARLEY_DISABLE_KEYRING", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_key_from_keyring_and_environment_wins(memory_keyring):
    assert secrets.find_api_key() == (None, "none")
    secrets.store_api_key(KEY)
    assert memory_keyring.store[(secrets.SERVICE, secrets.USERNAME)] == KEY
    assert secrets.find_api_key() == (KEY, "keyring")
    assert secrets.find_api_key({"OPENAI_API_KEY": "sk-from-env-" + "x" * 20}) == ("sk-from-env-" + "x" * 20, "environment")
    provider = choose_provider()
    assert provider.kind == "openai" and provider.api_key == KEY
    assert KEY not in repr(provider) and KEY not in repr(Endpoint("wss://x", "X", KEY))
    assert secrets.delete_api_key() is True and secrets.find_api_key() == (None, "none")


def test_bad_keys_and_missing_keyring_are_plain_words(memory_keyring):
    for bad, words in [("", "empty"), ("sk-abc", "too short"), ("sk-" + "a" * 30 + " b", "spaces")]:
        with pytest.raises(secrets.SecretStoreError, match=words):
            secrets.store_api_key(bad)
    keyring.set_keyring(keyring.backends.fail.Keyring())
    with pytest.raises(secrets.SecretStoreError) as info:
        secrets.store_api_key(KEY)
    assert "No OS keyring is available" in str(info.value) and "OPENAI_API_KEY" in str(info.value)
    assert secrets.find_api_key() == (None, "none")  # reading from a missing keyring is not an error


def test_key_dialog_saves_to_keyring_not_to_files(memory_keyring, qtbot, tmp_path, monkeypatch):
    from desktop.ui.key_dialog import KeyDialog

    dialog = KeyDialog(environ={})
    qtbot.addWidget(dialog)
    assert "No key is set" in dialog.where.text()
    dialog.key_edit.setText("short")
    dialog.save_button.click()
    assert "too short" in dialog.message.text() and not memory_keyring.store
    dialog.key_edit.setText(KEY)
    dialog.save_button.click()
    assert memory_keyring.store[(secrets.SERVICE, secrets.USERNAME)] == KEY
    assert "Saved in the OS keyring" in dialog.message.text() and dialog.key_edit.text() == ""
    assert "saved in the OS keyring" in dialog.where.text()
    dialog.show()
    dialog.grab().save(str(tmp_path / "key_dialog.png"))
    keyring.set_keyring(keyring.backends.fail.Keyring())
    dialog.key_edit.setText(KEY)
    dialog.save_button.click()
    assert "No OS keyring is available" in dialog.message.text()
    _assert_no_file_holds_key([Path(os.environ[v]) for v in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")])


def test_event_inspector_masks_the_key_and_elides_payloads(qtbot, tmp_path):
    from desktop.ui.event_inspector import EventInspector

    inspector = EventInspector(secrets=[KEY])
    qtbot.addWidget(inspector)
    inspector.tap("client", {"type": "session.update", "event_id": "e1", "session": {"instructions": f"my key is {KEY}"}})
    inspector.tap("client", {"type": "input_audio_buffer.append", "event_id": "e2", "audio": "A" * 4000})
    inspector.tap("client", {"type": "conversation.item.create", "item": {"content": [{"type": "input_image", "image_url": "data:image/jpeg;base64," + "B" * 9000}]}})
    inspector.tap("server", '{"type": "response.output_audio.delta", "delta": "' + "C" * 8000 + '"}')
    inspector.tap("server", "not json at all")
    texts = [e.text for e in inspector.log.entries]
    assert all(KEY not in t for t in texts) and "***" in texts[0]
    assert "A" * 100 not in texts[1] and "audio: 4000 base64 chars" in texts[1]
    assert "B" * 100 not in texts[2] and "image/jpeg data URL" in texts[2]
    assert "C" * 100 not in texts[3]
    assert inspector.log.entries[4].type == "(not JSON)"

    # Saved for a bug report: one JSON object a line, in order, as shown (masked, elided).
    saved = tmp_path / "events.jsonl"
    assert inspector.save(str(saved)) is None
    raw = saved.read_text()
    assert KEY not in raw and "A" * 100 not in raw and "C" * 100 not in raw
    lines = [json.loads(line) for line in raw.splitlines()]
    assert [(line["direction"], line["event"].get("type") if isinstance(line["event"], dict) else None) for line in lines] == [
        ("client", "session.update"), ("client", "input_audio_buffer.append"), ("client", "conversation.item.create"),
        ("server", "response.output_audio.delta"), ("server", "(not JSON)")]
    assert lines[0]["at"][:4].isdigit() and "T" in lines[0]["at"]
    assert inspector.save(str(tmp_path / "no such dir" / "x.jsonl")).startswith("The events could not be saved")


def _assert_no_file_holds_key(roots: list[Path]) -> int:
    checked = 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                checked += 1
                assert KEY not in path.read_text(errors="replace"), f"the key leaked into {path}"
    return checked


@pytest.mark.slow
def test_app_never_writes_the_key_to_logs_settings_or_transcripts(tmp_path):
    """The real app, with the key in the environment and debug logging, connecting to a server that refuses it."""
    home = tmp_path / "home"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OPENAI_API_KEY=KEY, PARLEY_DISABLE_KEYRING="1")
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
        env[var] = str(home / sub)
    out = subprocess.run(
        [sys.executable, "-m", "desktop.ui.app", "--url", "ws://127.0.0.1:9/v1/realtime", "--log-level", "debug", "--no-speaker",
         "--quit-after", "4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert KEY not in out.stdout and KEY not in out.stderr
    assert "Could not connect" in out.stderr or "Cannot reach" in out.stderr
    logs = list((home / "state").rglob("*.log"))
    assert logs and logs[0].stat().st_size > 0
    assert _assert_no_file_holds_key([home]) >= 1
