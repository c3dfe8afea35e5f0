"""The local-VAD barge-in state machine, driven frame by frame (32 ms frames on the input clock)."""

from __future__ import annotations

from desktop.core import local_barge_in as lb
from desktop.core.actions import DuckPlayback, PausePlayback, ResumePlayback, Send, StopPlayback, UnduckPlayback
from desktop.core.realtime_client import RealtimeClient

FRAME = 32


def feed(machine: lb.LocalBargeIn, probs: list[float], start_ms: int = 0, audible: bool = True):
    actions, t = [], start_ms
    for p in probs:
        t += FRAME
        actions += machine.on_frame(p, t, audible)
    return actions, t


def warm(settings: lb.LocalBargeInSettings | None = None) -> lb.LocalBargeIn:
    m = lb.LocalBargeIn(settings or lb.LocalBargeInSettings())
    m.assistant_heard_ms = 10_000
    return m


def test_onset_ducks_at_once_and_confirmation_pauses():
    m = warm(lb.LocalBargeInSettings(confirm_ms=200, duck_gain=0.0))
    actions, t = feed(m, [0.1, 0.9])
    assert actions == [lb.Duck(0.0)]
    assert m.phase == lb.LocalBargeInPhase.DUCKED
    actions, t = feed(m, [0.9] * 7, t)  # 224 ms of speech since onset
    assert lb.Pause() in actions and m.phase == lb.LocalBargeInPhase.PAUSED


def test_short_click_unducks_without_pausing():
    m = warm(lb.LocalBargeInSettings(confirm_ms=200))
    actions, t = feed(m, [0.9, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0])  # ~96 ms blip, then silence
    assert lb.Duck(0.0) in actions and lb.Unduck() in actions
    assert lb.Pause() not in actions
    assert m.phase == lb.LocalBargeInPhase.IDLE and m.false_interruptions == 1


def test_pause_without_server_turn_resumes_after_window():
    m = warm(lb.LocalBargeInSettings(confirm_ms=100, resume_after_ms=1000))
    actions, t = feed(m, [0.9] * 5 + [0.0] * 5)
    assert lb.Pause() in actions
    assert not any(isinstance(a, lb.Resume) for a in actions)
    actions, t = feed(m, [0.0] * 40, t)  # 1.28 s of silence
    resumes = [a for a in actions if isinstance(a, lb.Resume)]
    assert len(resumes) == 1 and m.phase == lb.LocalBargeInPhase.IDLE


def test_server_turn_commits_a_pending_interruption():
    m = warm(lb.LocalBargeInSettings(confirm_ms=100))
    feed(m, [0.9] * 5)
    assert m.phase == lb.LocalBargeInPhase.PAUSED
    assert m.on_server_turn_started(200) == [lb.Commit(32)]
    # Nothing resumes after a committed interruption.
    actions, _ = feed(m, [0.0] * 80, 200)
    assert not any(isinstance(a, lb.Resume) for a in actions)


def test_warm_up_and_silent_assistant_never_trigger():
    m = lb.LocalBargeIn(lb.LocalBargeInSettings(warmup_ms=1000))
    m.assistant_heard_ms = 500
    actions, t = feed(m, [0.9] * 10)
    assert actions == []
    m.assistant_heard_ms = 1500
    actions, _ = feed(m, [0.9] * 3, t, audible=False)
    assert actions == []


def test_disabled_does_nothing():
    m = warm(lb.LocalBargeInSettings(enabled=False))
    assert feed(m, [0.9] * 20)[0] == []


def _client_playing() -> RealtimeClient:
    c = RealtimeClient()
    c.on_connected()
    c.receive({"type": "session.updated", "event_id": "e0", "session": {"type": "realtime"}})
    c.receive({"type": "response.created", "event_id": "e1", "response": {"id": "resp_1", "status": "in_progress"}})
    c.receive({"type": "response.output_item.added", "event_id": "e2", "response_id": "resp_1", "output_index": 0,
               "item": {"id": "item_a", "type": "message", "role": "assistant", "status": "in_progress", "content": []}})
    c.receive({"type": "response.output_audio.delta", "event_id": "e3", "response_id": "resp_1", "item_id": "item_a",
               "output_index": 0, "content_index": 0, "delta": "AAAA" * 2400})  # 200 ms
    c.playback_started("item_a")
    c.assistant_heard(5000)
    return c


def test_client_false_interruption_resumes_and_sends_nothing():
    c = _client_playing()
    actions = []
    t = 0
    for p in [0.9] * 8 + [0.0] * 60:
        t += FRAME
        actions += c.local_vad_frame(p, t)
    kinds = [type(a) for a in actions]
    assert DuckPlayback in kinds and PausePlayback in kinds and ResumePlayback in kinds
    assert not any(isinstance(a, (Send, StopPlayback)) for a in actions)


def test_client_local_then_server_turn_stops_and_truncates():
    c = _client_playing()
    t = 0
    for p in [0.9] * 8:
        t += FRAME
        c.local_vad_frame(p, t)
    actions = c.receive({"type": "input_audio_buffer.speech_started", "event_id": "e4", "audio_start_ms": 10, "item_id": "item_u"})
    assert any(isinstance(a, StopPlayback) for a in actions)
    # The server cancels by itself (interrupt_response true): no response.cancel from us.
    assert not any(isinstance(a, Send) and a.event["type"] == "response.cancel" for a in actions)
    after = c.playback_stopped("item_a", 120)
    truncs = [a.event for a in after if isinstance(a, Send)]
    assert truncs and truncs[0]["type"] == "conversation.item.truncate" and truncs[0]["audio_end_ms"] == 120
    assert not any(isinstance(a, UnduckPlayback) for a in after)


def test_cancel_crossing_the_end_of_the_answer_is_not_an_error():
    from desktop.core.actions import Notice

    c = _client_playing()
    cancel = [a.event for a in c.cancel_response() if isinstance(a, Send) and a.event["type"] == "response.cancel"]
    assert cancel, "a live response is cancelled when the user stops it"
    notes = c.receive({"type": "error", "event_id": "e9", "error": {"type": "invalid_request_error",
                       "code": "response_cancel_not_active", "message": "no active response",
                       "event_id": cancel[0]["event_id"]}})
    assert not any(isinstance(n, Notice) for n in notes)
    # Any other error still reaches the user.
    notes = c.receive({"type": "error", "event_id": "e10", "error": {"type": "invalid_request_error",
                       "code": "invalid_value", "message": "bad", "event_id": cancel[0]["event_id"]}})
    assert any(isinstance(n, Notice) for n in notes)


# --------------------------------------------------------------------------- loudness onset (hold)
CHUNK = 10


def levels(machine: lb.LocalBargeIn, dbfs: list[float], start_ms: int = 0, raw: list[float | None] | None = None,
           audible: bool = True):
    actions, t = [], start_ms
    for i, level in enumerate(dbfs):
        t += CHUNK
        actions += machine.on_level(level, raw[i] if raw else None, t, audible)
    return actions, t


def test_a_sudden_voice_holds_playback_within_two_chunks_and_the_vad_takes_over():
    m = warm()
    actions, t = levels(m, [-70.0] * 50)  # a quiet room: the floor settles
    assert actions == [] and m.phase == lb.LocalBargeInPhase.IDLE
    actions, t = levels(m, [-30.0], t)
    assert actions == []  # one loud chunk is not enough (a keystroke)
    actions, t = levels(m, [-28.0], t)
    assert actions == [lb.Hold()] and m.phase == lb.LocalBargeInPhase.HELD
    # The VAD confirms within the window: no second silencing action, the usual path continues.
    actions, t2 = feed(m, [0.9], t)
    assert actions == [] and m.phase == lb.LocalBargeInPhase.DUCKED
    actions, t2 = feed(m, [0.9] * 8, t2)
    assert lb.Pause() in actions and m.phase == lb.LocalBargeInPhase.PAUSED
    assert m.on_server_turn_started(t2) == [lb.Commit(t)]


def test_a_hold_the_vad_does_not_confirm_is_released():
    m = warm(lb.LocalBargeInSettings(hold_confirm_ms=300))
    _, t = levels(m, [-70.0] * 50)
    actions, t = levels(m, [-25.0, -25.0, -25.0], t)  # a knock
    assert actions == [lb.Hold()]
    actions, t = feed(m, [0.1] * 5, t)  # 160 ms: the VAD hears no speech, still holding
    assert actions == [] and m.phase == lb.LocalBargeInPhase.HELD
    actions, t = levels(m, [-70.0] * 15, t)  # 150 ms more: past the window
    assert actions == [lb.Release(300)] and m.phase == lb.LocalBargeInPhase.IDLE
    assert m.released_holds == 1


def test_a_hold_then_a_too_short_voice_releases_instead_of_unducking():
    m = warm(lb.LocalBargeInSettings(confirm_ms=200))
    _, t = levels(m, [-70.0] * 50)
    actions, t = levels(m, [-25.0, -25.0], t)
    assert actions == [lb.Hold()]
    actions, t = feed(m, [0.9, 0.9, 0.0, 0.0, 0.0, 0.0], t)  # "mm" then nothing
    assert actions == [lb.Release(160)] and m.phase == lb.LocalBargeInPhase.IDLE  # last speech 584 + 96 ms gap


def test_echo_the_canceller_removes_never_holds():
    m = warm()
    _, t = levels(m, [-70.0] * 50)
    # The microphone hears the assistant at -20 dBFS; the canceller leaves -45 dBFS of it: removed 25 dB.
    actions, t = levels(m, [-45.0] * 30, t, raw=[-20.0] * 30)
    assert actions == []
    # The user speaks over it: the canceller can't remove a voice, the level after it jumps.
    actions, t = levels(m, [-22.0, -21.0], t, raw=[-19.0, -18.5])
    assert actions == [lb.Hold()]


def test_steady_noise_stops_counting_as_onset_and_warm_up_or_silence_never_hold():
    m = warm()
    _, t = levels(m, [-70.0] * 50)
    actions, t = levels(m, [-40.0] * 300, t)  # a fan starts: one hold at most, then the floor catches up
    assert actions.count(lb.Hold()) <= 1
    m.phase, m._held_at = lb.LocalBargeInPhase.IDLE, None
    actions, t = levels(m, [-40.0] * 100, t)
    assert actions == []
    cold = lb.LocalBargeIn()  # nothing heard yet: warming up
    _, t = levels(cold, [-70.0] * 50)
    assert levels(cold, [-20.0] * 5, t)[0] == []
    w = warm()
    _, t = levels(w, [-70.0] * 50, audible=False)
    assert levels(w, [-20.0] * 5, t, audible=False)[0] == []
    off = warm(lb.LocalBargeInSettings(energy_onset=False))
    _, t = levels(off, [-70.0] * 50)
    assert levels(off, [-20.0] * 5, t)[0] == []


def test_client_maps_hold_and_release_to_tentative_pause_and_resume():
    client = RealtimeClient(local_barge_in=lb.LocalBargeInSettings(hold_confirm_ms=100))
    client.local_barge_in.assistant_heard_ms = 10_000
    client.audible_item = "item_a"
    for i in range(50):
        client.local_level(-70.0, None, (i + 1) * 10)
    held = client.local_level(-25.0, None, 510) + client.local_level(-25.0, None, 520)
    assert held == [PausePlayback(tentative=True)]
    state = client.state
    released = []
    for i in range(12):
        released += client.local_level(-70.0, None, 530 + i * 10)
    assert released == [ResumePlayback(tentative=True)]
    assert client.state == state  # a hold changes no visible state and sends nothing
