"""The turn-detection dock maps Parley's knobs onto each provider honestly: a knob the provider lacks is
disabled with the reason, one whose meaning differs is named for what it does there, and the profiles are the
provider's own values."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from desktop.core import turn_taking as tt
from desktop.core.provider_capabilities import GEMINI, OPENAI
from desktop.ui.settings_dock import SettingsDock


def label_of(dock: SettingsDock, widget) -> str:
    label = dock._vad_form.labelForField(widget)
    return label.text() if isinstance(label, QLabel) else widget.text()


def test_gemini_knobs_are_named_for_what_they_do_and_missing_ones_say_why(qtbot):
    dock = SettingsDock(tt.TurnSettings())
    qtbot.addWidget(dock)
    assert label_of(dock, dock.prefix) == "Prefix padding" and dock.eagerness.property("offered") is not False
    dock.set_provider(GEMINI)
    assert label_of(dock, dock.prefix) == "Speech debounce"
    assert "debounce" in dock.prefix.toolTip()
    assert label_of(dock, dock.threshold) == "Start sensitivity" and "two levels" in dock.threshold.toolTip()
    assert not dock.idle.isEnabled() and dock.idle.toolTip().startswith("Not offered by Gemini Live")
    assert not dock.eagerness.isEnabled() and "no semantic" in dock.eagerness.toolTip()
    semantic = dock.detection.model().item(dock.detection.findData("semantic_vad"))
    assert not semantic.isEnabled()
    assert "next session" in dock.provider_label.text() and "Speech debounce" in dock.provider_label.toolTip()
    assert dock.profile.itemText(dock.profile.findData("fast")) == "Fast (0.5 / 20 / 300)"
    assert "activityHandling" in dock.interrupt_response.text()


def test_profiles_take_the_providers_own_values(qtbot):
    dock = SettingsDock(tt.TurnSettings())
    qtbot.addWidget(dock)
    seen = []
    dock.changed.connect(seen.append)
    dock.set_provider(GEMINI)
    dock.profile.setCurrentIndex(dock.profile.findData("fast"))
    gemini_fast = GEMINI.profiles["fast"]
    assert (seen[-1].threshold, seen[-1].prefix_padding_ms, seen[-1].silence_duration_ms) == (
        gemini_fast.threshold, gemini_fast.prefix_padding_ms, gemini_fast.silence_duration_ms)
    assert dock.prefix.value() == 20
    # an edit that lands on another of the provider's profiles is shown as that profile
    dock.silence.setValue(GEMINI.profiles["balanced"].silence_duration_ms)
    dock.prefix.setValue(GEMINI.profiles["balanced"].prefix_padding_ms)
    assert dock.profile.currentData() == "balanced"
    # back on OpenAI: its labels and its profile values
    dock.set_provider(OPENAI)
    assert label_of(dock, dock.prefix) == "Prefix padding" and dock.idle.isEnabled()
    dock.profile.setCurrentIndex(dock.profile.findData("patient"))
    assert dock.prefix.value() == OPENAI.profiles["patient"].prefix_padding_ms == 400


def test_a_named_profile_takes_the_new_providers_values(qtbot):
    dock = SettingsDock(tt.TurnSettings().with_profile("balanced"))
    qtbot.addWidget(dock)
    seen = []
    dock.changed.connect(seen.append)
    dock.set_provider(GEMINI)
    assert seen and seen[-1].profile == "balanced" and seen[-1].prefix_padding_ms == 40
    dock.set_provider(OPENAI)
    assert seen[-1].prefix_padding_ms == 300 and dock.prefix.value() == 300
    # custom values are the user's own: kept across providers
    dock.prefix.setValue(150)
    n = len(seen)
    dock.set_provider(GEMINI)
    assert len(seen) == n and dock.prefix.value() == 150


def test_the_voice_list_is_the_providers(qtbot, qasync_loop, tmp_path):
    """Gemini's voices on Gemini, OpenAI's on OpenAI (the list follows Connection → Provider)."""
    from desktop.core.provider_capabilities import GEMINI_VOICES
    from desktop.providers import ProviderChoice
    from tests.window_session import window_and_session

    gemini = ProviderChoice("gemini", "Gemini Live", "wss://127.0.0.1:9/never", "k" * 24, dialect="gemini",
                            auth="x-goog-api-key")
    window, session = window_and_session(qtbot, tmp_path / "settings.json", show=False, provider=gemini)
    combo = window.agent_ui.dock.voice
    offered = [combo.itemData(n) for n in range(combo.count()) if combo.itemData(n)]
    assert offered == list(GEMINI_VOICES)
