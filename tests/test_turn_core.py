"""Unit tests of the sans-I/O turn-taking core (desktop/core/turn_taking.py) and the settings file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from desktop.core import turn_taking as tt
from desktop.core.session_config import ManualTurns, SemanticVad, ServerVad
from desktop.settings import Settings

RATE = 24000


def chunk(ms: int, value: int = 1000) -> np.ndarray:
    return np.full(ms * RATE // 1000, value, dtype=np.int16)


def sent_ms(ops) -> float:
    return sum(tt.pcm_ms(o.pcm16) for o in ops if isinstance(o, tt.SendAudio))


# ------------------------------------------------------------------ settings
def test_turn_settings_round_trip_and_profiles():
    s = tt.TurnSettings().with_profile("patient")
    assert (s.threshold, s.prefix_padding_ms, s.silence_duration_ms) == (0.4, 400, 800)
    assert s.turn_detection() == ServerVad(0.4, 400, 800)
    assert tt.TurnSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert tt.TurnSettings(mode="push_to_talk").turn_detection() == ManualTurns()
    assert tt.TurnSettings(detection="semantic_vad", eagerness="low").turn_detection() == SemanticVad("low")
    custom = tt.TurnSettings(threshold=0.55)
    assert custom.matching_profile() == "custom"
    assert tt.TurnSettings(threshold=0.7, prefix_padding_ms=300, silence_duration_ms=600).matching_profile() == "noisy"


def test_turn_settings_from_garbage_fall_back_to_defaults():
    s = tt.TurnSettings.from_dict({"mode": "telepathy", "threshold": 7, "silence_duration_ms": "long", "rules": "x",
                                   "completion_cues": [1, 2], "idle_timeout_ms": 10, "eagerness": "max"})
    assert s == tt.TurnSettings()
    assert tt.TurnSettings.from_dict(None) == tt.TurnSettings()
    assert tt.parse_cue_list("That's all, go ahead\nthanks,, ") == ("that's all", "go ahead", "thanks")


def test_settings_file_is_atomic_tolerant_and_refuses_secrets(tmp_path):
    path = tmp_path / "settings.json"
    s = Settings.load(path)
    assert s.problem is None and s.get("turn.threshold", 0.5) == 0.5
    s.set("turn.threshold", 0.6)
    s.save()
    assert json.loads(path.read_text())["turn.threshold"] == 0.6
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temp file left behind
    assert Settings.load(path).get("turn.threshold", 0.5) == 0.6
    assert Settings.load(path).get("turn.threshold", "a string") == "a string"  # wrong kind: the default
    with pytest.raises(ValueError):
        s.set("openai_api_key", "sk-123")
    path.write_text("{not json")
    broken = Settings.load(path)
    assert broken.problem and "damaged" in broken.problem
    assert broken.get("turn.threshold", 0.5) == 0.5
    backups = [p for p in tmp_path.iterdir() if "corrupt" in p.name]
    assert len(backups) == 1 and backups[0].read_text() == "{not json"


def test_keeping_a_setting_writes_it_at_once_and_a_failed_write_is_not_fatal(tmp_path, caplog):
    path = tmp_path / "settings.json"
    s = Settings.load(path)
    assert s.keep("audio.noise", {"kind": "fan"}, "noise settings")
    assert json.loads(path.read_text())["audio.noise"] == {"kind": "fan"}
    blocked = Settings.load(tmp_path / "not a folder" / "settings.json")
    (tmp_path / "not a folder").write_text("a file where the folder should be")
    assert not blocked.keep("audio.noise", {"kind": "hiss"}, "noise settings")
    assert blocked.get("audio.noise") == {"kind": "hiss"}  # it applies for this run all the same
    assert "noise settings not saved" in caplog.text


# ------------------------------------------------------------------ push-to-talk
def test_push_to_talk_sends_only_the_press_plus_preroll():
    ptt = tt.PushToTalk(preroll_ms=300)
    for _ in range(50):
        assert ptt.audio(chunk(20)) == []  # 1 s before the press: nothing goes out
    ops = ptt.press(assistant_active=False)
    assert isinstance(ops[0], tt.ClearInput)
    assert sent_ms(ops) == pytest.approx(300, abs=0.1)
    held = [op for _ in range(25) for op in ptt.audio(chunk(20))]
    assert sent_ms(held) == pytest.approx(500)
    assert ptt.release() == [tt.Commit(respond=True)]
    assert ptt.audio(chunk(20)) == []  # after the release: nothing


def test_push_to_talk_short_press_hints_and_clears_instead_of_committing():
    ptt = tt.PushToTalk()
    ptt.audio(chunk(300))
    ptt.press(assistant_active=False)
    ptt.audio(chunk(60))
    ops = ptt.release()
    assert not any(isinstance(o, tt.Commit) for o in ops)
    assert isinstance(ops[0], tt.ClearInput)
    assert any(isinstance(o, tt.Hint) and "60 ms" in o.message for o in ops)


def test_push_to_talk_press_while_assistant_speaks_interrupts_first():
    ptt = tt.PushToTalk()
    assert isinstance(ptt.press(assistant_active=True)[0], tt.Interrupt)
    assert ptt.press(assistant_active=True) == []  # already held (key auto-repeat)
    assert isinstance(ptt.cancel()[0], tt.ClearInput) and not ptt.held


# ------------------------------------------------------------------ dynamic silence
def test_dynamic_silence_rules_raise_lower_and_restore():
    d = tt.DynamicSilence()
    ops = d.user_transcript("Which one do I want? Hmm, let me think.")
    assert ops == [tt.SetSilence(2000, ops[0].reason)] and "let me think" in ops[0].reason
    assert d.user_transcript("let me think") == []  # already active: no repeated update
    back = d.user_turn_committed()
    assert back[0].silence_ms is None and "back to the profile" in back[0].reason
    assert d.assistant_said("It is five past ten.") == []
    assert d.assistant_said("I found two timers. Shall I cancel both?")[0].silence_ms == 300
    assert d.assistant_said("What would you like to hear?")[0].silence_ms is None  # not yes/no: no override
    assert d.user_turn_committed() == []
    assert len(d.log) == 4


def test_dynamic_silence_disabled_or_edited():
    assert tt.DynamicSilence(enabled=False).user_transcript("let me think") == []
    rules = (tt.SilenceRule("slow", "user_said", ("one moment",), 3000),)
    d = tt.DynamicSilence(rules)
    assert d.user_transcript("let me think") == []
    assert d.user_transcript("one moment please")[0].silence_ms == 3000


# ------------------------------------------------------------------ client semantic turns
def _frames(sem: tt.ClientSemanticTurns, probability: float, ms: int, start_ms: int) -> tuple[list, int]:
    ops, t = [], start_ms
    for _ in range(ms // 32):
        t += 32
        ops += sem.frame(probability, t)
    return ops, t


def test_client_semantic_completion_cue_answers_at_once():
    sem = tt.ClientSemanticTurns(pause_ms=400, fallback_ms=1500)
    ops, t = _frames(sem, 0.9, 1000, 0)
    assert ops == []
    ops, t = _frames(sem, 0.05, 500, t)
    assert ops == [tt.Commit(respond=False)]
    assert sem.transcript("Book the table for eight, that's all.") == [tt.CreateResponse()]


def test_client_semantic_hesitation_holds_and_fallback_answers():
    sem = tt.ClientSemanticTurns(pause_ms=400, fallback_ms=1500, hold_max_ms=4000)
    _, t = _frames(sem, 0.9, 800, 0)
    _, t = _frames(sem, 0.05, 450, t)
    held = sem.transcript("I would like a pizza and also")
    assert held and isinstance(held[0], tt.Hint)
    ops, t = _frames(sem, 0.05, 2000, t)  # past the fallback, but the hesitation holds the turn
    assert tt.CreateResponse() not in ops
    ops, t = _frames(sem, 0.9, 600, t)  # the user goes on
    ops, t = _frames(sem, 0.05, 450, t)
    assert ops == [tt.Commit(respond=False)]
    assert sem.transcript("a salad") == []  # no cue: the fallback timer runs
    ops, t = _frames(sem, 0.05, 1600, t)
    assert ops.count(tt.CreateResponse()) == 1
    assert any("silence fallback" in d for d in sem.decisions)


def test_client_semantic_waits_for_a_slow_transcript_before_the_fallback():
    sem = tt.ClientSemanticTurns(pause_ms=400, fallback_ms=1000, transcript_wait_ms=3000)
    _, t = _frames(sem, 0.9, 800, 0)
    ops, t = _frames(sem, 0.05, 2000, t)  # the fallback time passes while the transcript is still coming
    assert ops == [tt.Commit(respond=False)]
    assert sem.transcript("Thank you, that is all for now.") == [tt.CreateResponse()]
    assert "completion cue" in sem.decisions[-1]
    lost = tt.ClientSemanticTurns(pause_ms=400, fallback_ms=1000, transcript_wait_ms=3000)
    _, t = _frames(lost, 0.9, 800, 0)
    ops, t = _frames(lost, 0.05, 4800, t)  # no transcript ever comes: answered anyway
    assert ops.count(tt.CreateResponse()) == 1 and "no transcript" in lost.decisions[-1]


# ------------------------------------------------------------------ wake word gate
def test_wake_word_gate_discards_before_phrase_and_commits_command():
    gate = tt.WakeWordGate(silence_ms=500, frame_ms=32)
    before = [op for _ in range(100) for op in gate.audio(chunk(20))]  # 2 s of talk before the phrase
    assert before == []
    ops = gate.detected(phrase_end_ms=1700)
    assert isinstance(ops[0], tt.ClearInput)
    assert sent_ms(ops) == pytest.approx(300, abs=1)  # only what followed the phrase
    t = 2000
    out = []
    for p, n in ((0.9, 30), (0.05, 20)):
        for _ in range(n):
            out += gate.audio(chunk(32))
            t += 32
            out += gate.frame(p, t)
    assert tt.Commit(respond=True) in out and not gate.awake
    assert gate.audio(chunk(20)) == []  # asleep again


def test_wake_word_gate_times_out_without_a_command():
    gate = tt.WakeWordGate(command_timeout_ms=1000)
    gate.audio(chunk(100))
    gate.detected(100)
    out, t = [], 100
    for _ in range(40):
        out += gate.audio(chunk(32))
        t += 32
        out += gate.frame(0.01, t)
    assert any(isinstance(o, tt.ClearInput) for o in out) and not gate.awake


def test_a_damaged_settings_file_is_reported_in_the_window_and_defaults_are_used(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "Parley").mkdir()
    (tmp_path / "Parley" / "settings.json").write_text('{"turn": {"mode": ')
    Settings._shared.clear()
    try:
        from desktop.ui.main_window import MainWindow

        window = MainWindow()
        qtbot.addWidget(window)
        assert window.turn_ui.dock.settings() == tt.TurnSettings()
        assert any("damaged" in n.message for n in window.notices)
        assert list((tmp_path / "Parley").glob("settings.corrupt-*.json"))
        window.turn_ui.dock.silence.setValue(700)  # an edit saves a fresh, valid file
        saved = json.loads((tmp_path / "Parley" / "settings.json").read_text())
        assert saved["turn"]["silence_duration_ms"] == 700
    finally:
        Settings._shared.clear()
