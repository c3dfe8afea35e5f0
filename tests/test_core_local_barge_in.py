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


def test_onset_holds_at_once_and_confirmation_pauses():
    m = warm(lb.LocalBargeInSettings(confirm_ms=200, duck_gain=0.0))
    actions, t = feed(m, [0.1, 0.9])
    # muting is a hold: the unplayed audio stays queued, and nothing muted counts as heard
    assert actions == [lb.Hold(cause="the VAD heard speech")]
    assert m.phase == lb.LocalBargeInPhase.DUCKED
    actions, t = feed(m, [0.9] * 7, t)  # 224 ms of speech since onset
    assert lb.Pause() in actions and m.phase == lb.LocalBargeInPhase.PAUSED


def test_short_click_releases_the_hold_without_pausing():
    m = warm(lb.LocalBargeInSettings(confirm_ms=200))
    actions, t = feed(m, [0.9, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0])  # ~96 ms blip, then silence
    assert actions[0] == lb.Hold(cause="the VAD heard speech")
    releases = [a for a in actions if isinstance(a, lb.Release)]
    assert len(releases) == 1 and releases[0].held_ms > 0  # play on from where it stopped: no word lost
    assert lb.Pause() not in actions and lb.Unduck() not in actions
    assert m.phase == lb.LocalBargeInPhase.IDLE and m.false_interruptions == 1


def test_a_duck_gain_above_zero_lowers_the_volume_and_plays_on():
    m = warm(lb.LocalBargeInSettings(confirm_ms=200, duck_gain=0.3))
    actions, t = feed(m, [0.9, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0])
    assert actions == [lb.Duck(0.3), lb.Unduck()]
    assert m.false_interruptions == 1


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
    assert PausePlayback(tentative=True, cause="the VAD heard speech") in actions
    assert PausePlayback() in actions and ResumePlayback() in actions
    assert DuckPlayback not in kinds
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
from desktop.core.speech_onset import SpeechOnsetDetector, SpeechOnsetSettings  # noqa: E402

BLOCK = 10


def onsets(detector: SpeechOnsetDetector, dbfs: list[float], raw: list[float | None] | None = None) -> list[int]:
    """Indices of the blocks on which an onset completes."""
    return [i for i, level in enumerate(dbfs) if detector.update(level, raw[i] if raw else None)]


def test_a_sudden_voice_is_an_onset_on_its_second_block_a_keystroke_is_not():
    d = SpeechOnsetDetector()
    assert onsets(d, [-70.0] * 50) == []  # a quiet room: the floor settles
    assert onsets(d, [-30.0, -70.0, -70.0]) == []  # one loud block (a keystroke)
    assert onsets(d, [-30.0, -28.0, -25.0, -25.0]) == [1]  # a voice: once, on its second block
    assert onsets(d, [-80.0] * 3) == []


def test_echo_the_canceller_removes_is_not_an_onset_a_voice_over_it_is():
    d = SpeechOnsetDetector()
    onsets(d, [-70.0] * 50)
    # The microphone hears the assistant at -20 dBFS; the canceller leaves -45 dBFS of it: 25 dB removed.
    assert onsets(d, [-45.0] * 30, raw=[-20.0] * 30) == []
    # The user speaks over it: a voice is not removed, the level after the canceller jumps.
    assert onsets(d, [-22.0, -21.0], raw=[-19.0, -18.5]) == [1]
    # Without a canceller (headset, files) the same levels count on their own.
    d2 = SpeechOnsetDetector()
    onsets(d2, [-70.0] * 50)
    assert onsets(d2, [-45.0] * 3) == [1]


def test_steady_noise_stops_counting_and_quiet_sounds_never_count():
    d = SpeechOnsetDetector()
    onsets(d, [-70.0] * 50)
    hits = onsets(d, [-40.0] * 300)  # a fan starts: one onset at most, then the floor catches up
    assert len(hits) <= 1 and d.floor_dbfs > -45.0
    assert onsets(d, [-40.0] * 100) == []
    d2 = SpeechOnsetDetector(SpeechOnsetSettings(min_dbfs=-50.0))
    onsets(d2, [-120.0] * 50)  # digital silence
    assert onsets(d2, [-55.0] * 5) == []  # far above the floor, but too quiet to be a voice


def test_an_onset_holds_playback_and_the_vad_takes_over():
    m = warm()
    assert m.on_onset(1000, assistant_audible=True) == [lb.Hold()]
    assert m.phase == lb.LocalBargeInPhase.HELD
    actions, t = feed(m, [0.9], 1000)  # the VAD agrees: no second silencing action
    assert actions == [] and m.phase == lb.LocalBargeInPhase.DUCKED
    actions, t = feed(m, [0.9] * 8, t)
    assert lb.Pause() in actions and m.phase == lb.LocalBargeInPhase.PAUSED
    assert m.on_server_turn_started(t) == [lb.Commit(1000)]


def test_a_hold_the_vad_does_not_confirm_is_released():
    m = warm(lb.LocalBargeInSettings(hold_confirm_ms=300))
    assert m.on_onset(1000, True) == [lb.Hold()]
    actions, t = feed(m, [0.1] * 9, 1000)  # 288 ms: the VAD hears no speech, still holding
    assert actions == [] and m.phase == lb.LocalBargeInPhase.HELD
    assert m.tick(1300) == [lb.Release(300)] and m.phase == lb.LocalBargeInPhase.IDLE
    assert m.released_holds == 1
    assert m.on_onset(1310, True) == [lb.Hold()]  # the next one holds again
    assert m.on_server_turn_started(1400) == [lb.Commit(1310)]


def test_a_hold_then_a_too_short_voice_releases_instead_of_unducking():
    m = warm(lb.LocalBargeInSettings(confirm_ms=200))
    assert m.on_onset(520, True) == [lb.Hold()]
    actions, t = feed(m, [0.9, 0.9, 0.0, 0.0, 0.0, 0.0], 520)  # "mm" then nothing
    assert actions == [lb.Release(160)] and m.phase == lb.LocalBargeInPhase.IDLE  # last speech 584 + 96 ms gap


def test_no_hold_while_warming_up_when_silent_or_switched_off():
    assert lb.LocalBargeIn().on_onset(100, True) == []  # nothing heard yet: the canceller is converging
    assert warm().on_onset(100, assistant_audible=False) == []
    assert warm(lb.LocalBargeInSettings(energy_onset=False)).on_onset(100, True) == []
    assert warm(lb.LocalBargeInSettings(enabled=False)).on_onset(100, True) == []
    held = warm()
    held.on_onset(100, True)
    assert held.configure(lb.LocalBargeInSettings(energy_onset=False)) == [lb.Release(0)]


def test_client_maps_hold_and_release_to_tentative_pause_and_resume():
    client = RealtimeClient(local_barge_in=lb.LocalBargeInSettings(hold_confirm_ms=100))
    client.local_barge_in.assistant_heard_ms = 10_000
    client.audible_item = "item_a"
    state = client.state
    assert client.local_onset(520) == [PausePlayback(tentative=True, cause="a sudden sound")]
    assert client.tick() == []
    # The VAD heard nothing by 640 ms (past the 100 ms window): the hold is released.
    assert client.local_vad_frame(0.0, 640) == [ResumePlayback(tentative=True)]
    assert client.state == state  # a hold changes no visible state and sends nothing


def test_echo_residue_is_kept_from_the_server_until_the_user_may_be_speaking():
    m = warm()
    assert m.uplink_gain(assistant_audible=True, echo_cancelled=True) == 0.1  # only echo residue now
    assert m.uplink_gain(assistant_audible=False, echo_cancelled=True) == 1.0  # nobody else talking
    assert m.uplink_gain(assistant_audible=True, echo_cancelled=False) == 1.0  # headset: no echo at all
    assert lb.LocalBargeIn().uplink_gain(True, True) == 1.0  # warming up: the gate handles it
    m.on_onset(1000, True)
    assert m.uplink_gain(True, True) == 1.0  # the first hint of a voice opens it at once
    soft = warm()
    feed(soft, [0.5])  # under the VAD threshold (0.6): still treated as residue
    assert soft.uplink_gain(True, True) == 0.1
    feed(soft, [0.7])  # the VAD hears speech (no loud onset needed)
    assert soft.uplink_gain(True, True) == 1.0
    off = warm(lb.LocalBargeInSettings(echo_residue_gain=1.0))
    assert off.uplink_gain(True, True) == 1.0


def test_what_the_vad_calls_speech_in_echo_residue_neither_ducks_nor_lifts_the_residue_gain():
    """While the assistant is audible, frames the canceller took > 12 dB out of are its own voice's leftovers."""
    m = warm()
    actions = []
    t = 0
    for _ in range(10):
        t += FRAME
        actions += m.on_frame(0.9, t, True, echo_removed_db=28.0)
    assert actions == [] and m.phase == lb.LocalBargeInPhase.IDLE
    assert m.echo_frames_ignored == 10
    assert m.uplink_gain(True, True) == m.settings.echo_residue_gain  # still kept from the server
    # the canceller's grip slips for one frame (3 dB taken out) while Silero calls it speech: still residue
    t += FRAME
    assert m.on_frame(0.9, t, True, echo_removed_db=3.0) == []
    t += FRAME
    assert m.on_frame(0.9, t, True, echo_removed_db=28.0) == []
    assert m.echo_frames_ignored == 12
    # the user speaks over the assistant: the canceller removes little of the sum for as long as the voice
    # lasts, and the duck comes once the window (96 ms) holds only such frames
    ducks = []
    for _ in range(3):
        t += FRAME
        ducks.append(m.on_frame(0.9, t, True, echo_removed_db=3.0))
    assert ducks == [[], [], [lb.Hold(cause="the VAD heard speech")]]
    assert m.uplink_gain(True, True) == 1.0
    # once ducked, frames are judged on the VAD alone (playback is silent, so there is no echo to speak of)
    actions, t = feed(m, [0.9] * 7, t)
    assert lb.Pause() in actions
    # switched off, or not known (no canceller), or the assistant silent: the VAD alone decides, as before
    for settings, removed, audible in ((lb.LocalBargeInSettings(echo_dominated_db=None), 28.0, True),
                                       (lb.LocalBargeInSettings(), None, True)):
        m2 = warm(settings)
        assert m2.on_frame(0.9, FRAME, audible, echo_removed_db=removed) == [lb.Hold(cause="the VAD heard speech")]
    m3 = warm()
    m3.on_frame(0.9, FRAME, False, echo_removed_db=28.0)
    assert m3.echo_frames_ignored == 0


def test_the_echo_coming_back_after_a_speaker_underrun_is_not_taken_for_the_user():
    # the onset came first (the echo's return), the underrun report a few ms later: the hold is released at once
    m = warm()
    assert m.on_onset(5000, True) == [lb.Hold()]
    assert m.on_speaker_underrun(5004) == [lb.Release(4)]
    assert m.phase == lb.LocalBargeInPhase.IDLE and m.underrun_onsets == 1
    # the report came first: an onset within 150 ms is not held, a later one is
    m = warm()
    assert m.on_speaker_underrun(8000) == []
    assert m.on_onset(8090, True) == []
    assert m.underrun_onsets == 1 and m.phase == lb.LocalBargeInPhase.IDLE
    assert m.on_onset(8400, True) == [lb.Hold()]
    # a hold older than the window is the user's: an underrun now does not release it
    assert m.on_speaker_underrun(8700) == []
    assert m.phase == lb.LocalBargeInPhase.HELD
    # switched off
    m = warm(lb.LocalBargeInSettings(underrun_onset_ms=0))
    assert m.on_onset(5000, True) == [lb.Hold()]
    assert m.on_speaker_underrun(5004) == [] and m.phase == lb.LocalBargeInPhase.HELD
