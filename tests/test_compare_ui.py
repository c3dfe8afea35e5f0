"""Audio → Compare providers on a series… in the window: the dialog offers every provider (those not set up are
disabled with what they lack), and a run on the engine's two dialects writes one report the window can open."""

from __future__ import annotations

import pytest

from desktop.ui.compare_ui import CompareDialog
from tests.conftest import AUDIO
from tests.waiting import wait_until
from tests.window_session import window_and_session


def test_the_dialog_offers_what_is_set_up_and_says_what_the_rest_lack(qtbot, tmp_path, monkeypatch):
    for var in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PARLEY_DISABLE_KEYRING", "1")
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-test-key-0123456789")
    window, _session = window_and_session(qtbot, tmp_path / "settings.json", show=False)
    dialog = CompareDialog(window, 2, window.compare_ui.store)
    qtbot.addWidget(dialog)
    boxes = {box.property("key"): box for box, _ in dialog.boxes}
    assert set(boxes) == {"openai", "azure", "gemini", "compatible", "engine", "engine:gemini"}
    assert boxes["engine"].isEnabled() and boxes["engine:gemini"].isEnabled() and boxes["gemini"].isEnabled()
    assert boxes["engine"].isChecked() and boxes["engine:gemini"].isChecked()  # the default pair
    assert not boxes["openai"].isEnabled() and "key" in boxes["openai"].toolTip().lower()
    assert not boxes["azure"].isEnabled() and boxes["azure"].toolTip()
    assert [key for key, _ in dialog.chosen()] == ["engine", "engine:gemini"]
    assert window.compare_ui.action in window.audio_menu.menu.actions()


@pytest.mark.slow
def test_a_comparison_from_the_window(qtbot, qasync_loop, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    window, session = window_and_session(qtbot, tmp_path / "settings.json", audio_in=str(AUDIO / "silence_2s.wav"))
    dialog = CompareDialog(window, 1, window.compare_ui.store)
    qtbot.addWidget(dialog)
    providers = [choice for _, choice in dialog.chosen()]

    async def scenario():
        assert await session.start(), session.status
        task = window.compare_ui.run(providers, [str(AUDIO / "what_time.wav")])
        assert task is not None
        assert await wait_until(task.done, 150)
        back = session.options.provider.label, session.dialect.capabilities.name
        await session.stop()
        return back

    back = qasync_loop.run_until_complete(scenario())
    assert back == ("offline engine", "Offline engine"), back  # the session is back on the provider it started on
    result = window.compare_ui.last_result
    assert [name for name, _ in result.runs] == ["offline engine", "offline engine (Gemini dialect)"]
    assert window.file_voice_ui.report_action.isEnabled()
    assert window.file_voice_ui.last_report == str(result.report_path)
    assert any("Comparison done on 2 provider(s)" in n.message for n in window.notices)
