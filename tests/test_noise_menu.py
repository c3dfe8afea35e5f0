"""Audio → Background noise through the window: the choice applies to the session at once, shows in the status
bar, and comes back at the next start; a noise file gone since is reported and left off."""

from __future__ import annotations

import shutil

from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.settings import Settings
from desktop.ui.main_window import MainWindow
from desktop.ui.noise_menu import KEY
from tests.conftest import AUDIO


def _window(qtbot, settings_path):
    window = MainWindow(settings=Settings.load(settings_path), keep_layout=False)
    qtbot.addWidget(window)
    session = LiveSession(SessionOptions(choose_provider(environ={}), use_speaker=False))
    window.attach(session)
    return window, session


def test_noise_choice_applies_shows_and_persists(qtbot, tmp_path):
    settings_path = tmp_path / "settings.json"
    window, session = _window(qtbot, settings_path)
    menu = window.noise_menu
    assert session.noise is None and menu.kind_actions[None].isChecked() and menu.label.text() == ""
    assert menu.menu.menuAction() in window.audio_menu.menu.actions()
    menu.kind_actions["fan"].trigger()
    assert session.noise is not None and session.noise.kind == "fan" and session.noise.level_dbfs == -35.0
    menu.level_actions[-25.0].trigger()
    assert session.noise.level_dbfs == -25.0 and menu.label.text() == "+ noise: fan -25 dBFS"
    noise_file = tmp_path / "room.wav"
    shutil.copy(AUDIO / "tell_story.wav", noise_file)
    assert menu.choose_kind("file", str(noise_file))
    assert session.noise.kind == "file" and menu.kind_actions["file"].isChecked()
    assert Settings.load(settings_path).get(KEY) == {"kind": "file", "level_dbfs": -25.0, "path": str(noise_file)}
    # The next start: the same noise, at once.
    window2, session2 = _window(qtbot, settings_path)
    assert session2.noise is not None and session2.noise.kind == "file" and session2.noise.level_dbfs == -25.0
    assert window2.noise_menu.level_actions[-25.0].isChecked()
    # The file is gone by the start after: said, and left off.
    noise_file.unlink()
    window3, session3 = _window(qtbot, settings_path)
    assert session3.noise is None and window3.noise_menu.kind_actions[None].isChecked()
    assert "not found" in window3.notices[-1].message
    assert Settings.load(settings_path).get(KEY)["kind"] is None


def test_turning_it_off(qtbot, tmp_path):
    window, session = _window(qtbot, tmp_path / "settings.json")
    window.noise_menu.kind_actions["hiss"].trigger()
    assert session.noise is not None
    window.noise_menu.kind_actions[None].trigger()
    assert session.noise is None and window.noise_menu.label.text() == ""
