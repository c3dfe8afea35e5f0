"""The waveform's output lane: the assistant's answer as it was played, on the microphone's timeline, and a red
marker where a barge-in cut it. Pure tests of the lane's timeline logic and of where the playback buffer says an
item's audio was heard; then the window on the embedded engine (the device-less clock, and a real speaker on the
PulseAudio null sink), compared with the session's own accounting of what was heard when."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from desktop.audio.playback_buffer import PlaybackBuffer
from desktop.core.actions import BargeInHappened, TurnState
from desktop.ui.waveform import ANSWER_COLOR, COLUMN_MS, CUT_COLOR, OutputLane
from tests.conftest import AUDIO
from tests.waiting import wait_until
from tests.window_session import window_and_session

PER_COL = 240  # 24 kHz samples in a 10 ms column


# ---------------------------------------------------------------------------------------------- the lane, pure
def _blocks(signal: np.ndarray, sizes: list[int]):
    """`signal` cut into consecutive blocks of the given sizes (cycled), with each block's start."""
    pos, k = 0, 0
    while pos < len(signal):
        n = sizes[k % len(sizes)]
        yield signal[pos:pos + n], pos
        pos += n
        k += 1


def test_feed_gives_one_peak_per_column_of_the_speaker_timeline_whatever_the_block_sizes():
    rng = np.random.default_rng(7)
    signal = (rng.uniform(-1, 1, 24000) * np.repeat(rng.uniform(0, 1, 100), 240)).astype(np.float32)
    lane = OutputLane(window_ms=2000)
    for block, start in _blocks(signal, [480, 301, 17, 1024, 240, 99]):  # blocks straddle column edges
        lane.feed(block, start)
    lane.anchor(mic_ms=500.0, speaker_pos=0)
    assert lane.drain(latency_samples=0) == 100
    times, peaks = lane.between(-1e9, 1e9)
    expected = np.abs(signal).reshape(100, 240).max(axis=1)
    np.testing.assert_allclose(peaks, expected, rtol=0, atol=1e-7)
    np.testing.assert_allclose(times, 500.0 + 10.0 * np.arange(100))


def test_columns_are_placed_when_heard_on_the_microphone_clock():
    lane = OutputLane(window_ms=2000)
    lane.feed(np.full(480, 0.5, np.float32), 24000)  # handed at the speaker's 1.000 s
    lane.drain(0)
    assert not lane.columns, "no microphone clock yet: the columns wait"
    lane.anchor(mic_ms=3000.0, speaker_pos=24000)  # the mic stands at 3 s when the speaker has had 1 s
    assert lane.drain(latency_samples=960) == 2  # heard 40 ms after being handed
    times, peaks = lane.between(-1e9, 1e9)
    np.testing.assert_allclose(times, [3040.0, 3050.0])
    np.testing.assert_allclose(peaks, [0.5, 0.5])
    assert lane.to_mic_ms(24000 + 2400) == pytest.approx(3100.0)


def test_the_offset_holds_through_jitter_and_a_stalled_event_loop_and_follows_a_real_jump():
    lane = OutputLane(offset_window=50)
    rng = np.random.default_rng(1)
    mic_ms, speaker_ms = 1000.0, 0.0
    for _ in range(100):  # microphone chunks of 20 ms; the speaker's handed position jitters by up to a 20 ms block
        mic_ms += 20
        speaker_ms += 20
        lane.anchor(mic_ms, int((speaker_ms + rng.uniform(0, 20)) * 24))
    assert lane.offset_ms == pytest.approx(1000.0 - 10.0, abs=4.0)
    # The loop stalled for 400 ms: twenty chunks come at once, read against a speaker that has gone on meanwhile.
    late = 400.0
    for k in range(20):
        mic_ms += 20
        lane.anchor(mic_ms, int((speaker_ms + late + rng.uniform(0, 20)) * 24))
        speaker_ms += 20 if k == 19 else 0  # (the speaker has played the 400 ms already)
    speaker_ms = mic_ms - 1000.0
    assert lane.offset_ms == pytest.approx(1000.0 - 10.0, abs=8.0)  # a mean would be 130 ms off now
    # The microphone paused for a second while the speaker went on: followed within half a window.
    speaker_ms += 1000
    for _ in range(30):
        mic_ms += 20
        speaker_ms += 20
        lane.anchor(mic_ms, int((speaker_ms + rng.uniform(0, 20)) * 24))
    assert lane.offset_ms == pytest.approx(0.0 - 10.0, abs=8.0)


def test_a_column_split_between_two_drains_keeps_its_peak_and_reset_forgets_the_clock():
    lane = OutputLane()
    lane.anchor(0.0, 0)
    lane.feed(np.array([0.1] * 100, np.float32), 0)
    lane.drain(0)
    lane.feed(np.array([0.7] * 140 + [0.2] * 240, np.float32), 100)
    lane.drain(0)
    times, peaks = lane.between(-1e9, 1e9)
    np.testing.assert_allclose(times, [0.0, 10.0])
    np.testing.assert_allclose(peaks, [0.7, 0.2], rtol=1e-6)
    lane.reset()
    assert lane.offset_ms is None and lane.to_mic_ms(0) is None
    lane.feed(np.full(240, 0.3, np.float32), 0)  # a new buffer's timeline starts again at 0
    lane.anchor(5000.0, 0)
    assert lane.drain(0) == 1 and lane.columns[-1][:2] == [5000.0, pytest.approx(0.3)]


def test_what_the_device_dropped_at_a_cut_is_silenced_on_the_lane():
    lane = OutputLane()
    lane.anchor(0.0, 0)
    lane.feed(np.full(2400, 0.5, np.float32), 0)  # 100 ms handed
    lane.drain(0)
    lane.feed(np.full(960, 0.5, np.float32), 2400)  # 40 ms more, not drained yet
    lane.dropped(1800)  # the device had played up to 75 ms when its buffer was cut
    lane.feed(np.full(480, 0.25, np.float32), 3360)  # the restarted stream goes on
    lane.drain(0)
    times, peaks = lane.between(-1e9, 1e9)
    np.testing.assert_allclose(times, 10.0 * np.arange(16))
    np.testing.assert_allclose(peaks, [0.5] * 8 + [0.0] * 6 + [0.25] * 2)  # the column holding 75 ms was heard


def test_the_pending_columns_are_bounded():
    lane = OutputLane(pending_blocks=8)
    for k in range(100):
        lane.feed(np.full(240, 0.5, np.float32), k * 240)
    lane.anchor(0.0, 0)
    assert lane.drain(0) == 8  # the newest eight blocks: nothing grows while no microphone runs
    assert lane.columns[0][0] == pytest.approx(920.0)


def test_heard_position_follows_the_item_through_pauses_and_the_latency():
    buf = PlaybackBuffer()
    buf.set_output_latency(0.040)
    buf.read(480)  # 20 ms of silence first
    buf.enqueue("a", np.full(24000, 1000, np.int16))
    buf.read(2400)  # 100 ms of "a", handed at 480 … 2880
    buf.pause(fade_ms=0)
    buf.read(4800)  # 200 ms of nothing
    buf.resume()
    buf.read(2400)  # "a" again at 7680 … 10080
    assert buf.heard_position("a", 0) == 480 + 960
    assert buf.heard_position("a", 50) == 480 + 1200 + 960
    assert buf.heard_position("a", 100) == 2880 + 960  # the cut at the pause
    assert buf.heard_position("a", 150) == 7680 + 1200 + 960
    assert buf.heard_position("a", 300) is None  # not handed yet
    assert buf.heard_position("b", 0) is None


def test_a_cut_marker_says_how_long_after_the_speech_began_the_answer_stopped(qtbot):
    from desktop.ui.waveform import Waveform

    waveform = Waveform()
    qtbot.addWidget(waveform)
    waveform.now_ms = 9000.0
    waveform.set_threshold(0.5, 500, prefix_padding_ms=300)
    waveform.cuts.append((5000.0, 2100))
    assert waveform.cut_markers() == [(5000.0, 2100, None)]  # no speech seen
    waveform.server_boundary(True, 4400)  # the server's start includes the 300 ms padding
    assert waveform.cut_markers()[0][2] == pytest.approx(300.0)
    waveform.local_regions.append([5090.0, 5800.0])  # held at the onset, before the local VAD's first speech frame
    assert waveform.cut_markers()[0][2] == pytest.approx(-90.0)
    waveform.local_regions.appendleft([1000.0, 2000.0])  # an earlier utterance, long over, is not the one
    waveform.local_regions.append([4600.0, None])  # one going on at the cut wins
    assert waveform.cut_markers()[0][2] == pytest.approx(400.0)


# ---------------------------------------------------------------------------------------------- the window
class _Heard:
    """On every microphone chunk (after the waveform took it): the waveform's time and how much of each answer the
    session counts as heard. Where an answer started on the microphone's timeline is then `mic ms - heard`,
    its median over the chunks while it played."""

    def __init__(self, session, waveform) -> None:
        self.rows: list[tuple[float, dict[str, int]]] = []
        self.pcm: dict[str, list[np.ndarray]] = {}
        playback = session.playback
        session.turns.input_taps.append(
            lambda chunk: self.rows.append((waveform.now_ms, {i: playback.played_samples(i) for i in list(self.pcm)})))
        session.output_taps.append(lambda item_id, pcm: self.pcm.setdefault(item_id, []).append(pcm))

    def start_ms(self, item_id: str, until_samples: int) -> float:
        est = [mic - heard[item_id] / 24 for mic, heard in self.rows if 0 < heard.get(item_id, 0) < until_samples]
        assert len(est) >= 10, len(est)
        return float(np.median(est))  # a stalled loop hands several chunks over late: a few too low

    def audio(self, item_id: str) -> np.ndarray:
        return np.concatenate(self.pcm[item_id])


def _best_lag(waveform, start_ms: float, pcm: np.ndarray) -> tuple[float, float]:
    """The shift (ms) that best lines the lane's columns up with the answer's own audio started at `start_ms`
    (each column compared with the peak of the answer's samples it would hold), and the normalised correlation
    there."""
    length_ms = len(pcm) / 24
    times, peaks = waveform.output.between(start_ms - 300, start_ms + length_ms + 300)
    x = np.abs(pcm.astype(np.float64)) / 32768.0
    best = (0.0, -1.0)
    for lag in np.arange(-60, 61, 2.0):
        first = np.round((times - start_ms - lag) * 24).astype(int)
        want = np.array([x[max(0, f):max(0, f + PER_COL)].max(initial=0.0) for f in first])
        den = np.linalg.norm(want) * np.linalg.norm(peaks)
        corr = float(want @ peaks / den) if den else 0.0
        if corr > best[1]:
            best = (float(lag), corr)
    return best


def _pixels_have(image, x: float, y0: float, y1: float, color) -> bool:
    want = (color.red(), color.green(), color.blue())
    for y in range(int(y0), int(y1)):
        c = image.pixelColor(int(round(x)), y)
        if (c.red(), c.green(), c.blue()) == want:
            return True
    return False


def _answer_plays_on_the_lane(qtbot, qasync_loop, tmp_path, use_speaker: bool):
    window, session = window_and_session(qtbot, tmp_path / "settings.json", audio_in=str(AUDIO / "silence_2s.wav"),
                                         use_speaker=use_speaker, echo_mode="headset")
    waveform = window.turn_ui.waveform
    heard = _Heard(session, waveform)

    async def scenario():
        assert await session.start(), session.status
        session.send_text("What time is it?")
        assert await wait_until(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING, 20)
        assert await wait_until(lambda: session.client.state == TurnState.LISTENING, 20)
        await asyncio.sleep(0.5)
        image = waveform.grab().toImage()
        await session.stop()
        return image

    image = qasync_loop.run_until_complete(scenario())
    assert session.speaker_open is use_speaker
    answer = next(i for i in session.client.conversation if i.role == "assistant")
    pcm = heard.audio(answer.item_id)
    length_ms = len(pcm) / 24
    assert session.playback.played_samples(answer.item_id) == len(pcm), "the whole answer played"
    start = heard.start_ms(answer.item_id, len(pcm))
    lag, corr = _best_lag(waveform, start, pcm)
    latency = session.playback.output_latency_ms
    print(f"answer {length_ms:.0f} ms from {start:.0f} ms on the mic clock; lane lag {lag:+.0f} ms, "
          f"correlation {corr:.3f}, output latency {latency} ms")
    assert abs(lag) <= 2 * COLUMN_MS and corr > 0.95, (lag, corr)
    # Silent before the answer began and after it ended (the lane is not the received audio, which came at once).
    times, peaks = waveform.output.between(start - 1500, start - 2 * COLUMN_MS)
    assert len(times) > 20 and peaks.max() < 1e-3
    times, peaks = waveform.output.between(start + length_ms + 2 * COLUMN_MS, waveform.now_ms)
    assert len(times) > 20 and peaks.max() < 1e-3
    # Painted: below the centre line, at the answer's loudest column, in the answer's colour.
    times, peaks = waveform.output.between(start, start + length_ms)
    loud = float(times[int(np.argmax(peaks))]) + COLUMN_MS / 2
    r = waveform.rect()
    x = r.width() - 1 - (waveform.now_ms - loud) / waveform.window_ms * (r.width() - 1)
    assert 0 < x < r.width()
    mid = r.height() / 2
    assert _pixels_have(image, x, mid + 1, r.height() - 6, ANSWER_COLOR)
    assert not _pixels_have(image, x, 1, mid - 1, ANSWER_COLOR)


@pytest.mark.slow
def test_an_answer_appears_on_the_output_lane_when_it_was_played(qtbot, qasync_loop, tmp_path):
    # No speaker: the session's device-less clock plays the answer at real-time pace (and truncations count it).
    _answer_plays_on_the_lane(qtbot, qasync_loop, tmp_path, use_speaker=False)


@pytest.mark.slow
@pytest.mark.audio
def test_an_answer_through_a_real_speaker_appears_when_it_was_heard(qtbot, qasync_loop, tmp_path, pulse_audio):
    # A real output stream on the PulseAudio null sink: the columns come late by the stream's latency.
    _answer_plays_on_the_lane(qtbot, qasync_loop, tmp_path, use_speaker=True)


@pytest.mark.slow
def test_a_barge_in_leaves_a_cut_marker_where_the_answer_was_truncated(qtbot, qasync_loop, tmp_path):
    _cut_marker_at_the_truncation(qtbot, qasync_loop, tmp_path, use_speaker=False)


@pytest.mark.slow
@pytest.mark.audio
def test_a_barge_in_through_a_real_speaker_is_marked_where_its_buffer_was_cut(qtbot, qasync_loop, tmp_path,
                                                                               pulse_audio):
    # The speaker's queued audio is dropped at the cut (SpeakerOutput.interrupt): the marker is at the truncation.
    session = _cut_marker_at_the_truncation(qtbot, qasync_loop, tmp_path, use_speaker=True)
    assert session._output.flushes >= 1


def _cut_marker_at_the_truncation(qtbot, qasync_loop, tmp_path, use_speaker: bool):
    window, session = window_and_session(qtbot, tmp_path / "settings.json", audio_in=str(AUDIO / "silence_2s.wav"),
                                         use_speaker=use_speaker, echo_mode="headset")
    waveform = window.turn_ui.waveform
    heard = _Heard(session, waveform)
    notes: list = []
    session.subscribe(notes.append)

    async def scenario():
        assert await session.start(), session.status
        session.send_text("Tell me a long story about a dragon.")
        assert await wait_until(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING, 20)
        await asyncio.sleep(2.5)
        assert session.speak_file(AUDIO / "stop_talking.wav")
        assert await wait_until(lambda: any(isinstance(n, BargeInHappened) for n in notes), 10), "no barge-in"
        await asyncio.sleep(0.6)
        image = waveform.grab().toImage()
        await session.stop()
        return image

    image = qasync_loop.run_until_complete(scenario())
    barge = next(n for n in notes if isinstance(n, BargeInHappened))
    truncates = [e for e in session.sent_events if e["type"] == "conversation.item.truncate"]
    assert truncates and truncates[0]["audio_end_ms"] == barge.heard_ms
    start = heard.start_ms(barge.item_id, barge.heard_ms * 24 - 2400)
    cut_ref = start + barge.heard_ms
    markers = waveform.cut_markers()
    assert len(markers) == 1, markers
    at, heard_ms, since = markers[0]
    print(f"truncated at {barge.heard_ms} ms: expected at {cut_ref:.0f} ms on the mic clock, marker at {at:.0f} ms, "
          f"{since} ms after the speech began")
    assert heard_ms == barge.heard_ms
    assert abs(at - cut_ref) <= 2 * COLUMN_MS, (at, cut_ref)
    # The speech that cut it began about then: held at its loudness onset, a few tens of ms before the local VAD's
    # first speech frame, or stopped once the VAD heard it.
    local_starts = [a for a, _ in waveform.local_regions]
    assert since is not None and -300 < since < 1000 and any(abs(at - since - a) < 1e-6 for a in local_starts), \
        (since, local_starts)
    # The answer played up to the cut, and nothing after it (a 5 ms fade at most).
    _, before = waveform.output.between(cut_ref - 500, cut_ref - 2 * COLUMN_MS)
    assert before.max() > 0.01
    t_after, after = waveform.output.between(cut_ref + 2 * COLUMN_MS, cut_ref + 400)
    assert len(after) > 30 and after.max() < 1e-3, (t_after[after > 1e-3] - cut_ref, after[after > 1e-3])
    # Painted: a red line at the cut.
    r = waveform.rect()
    x = r.width() - 1 - (waveform.now_ms - at) / waveform.window_ms * (r.width() - 1)
    assert any(_pixels_have(image, x + dx, r.height() * 0.3, r.height() * 0.9, CUT_COLOR) for dx in (-1, 0, 1))
    return session
