"""Unit tests of desktop.core.speech_segmenter.SpeechSegmenter (server-VAD semantics, no audio needed)."""

from __future__ import annotations

import pytest

from desktop.core.speech_segmenter import SegmentEnd, SegmentStart, SpeechSegmenter


def run(seg: SpeechSegmenter, probabilities: list[float]) -> list[tuple[int, SegmentStart | SegmentEnd]]:
    """Push frames; return (frame index, boundary) for every boundary decided."""
    out = []
    for p in probabilities:
        index = seg.frames
        boundary = seg.push(p)
        if boundary is not None:
            out.append((index, boundary))
    return out


def test_start_at_threshold_with_prefix_padding_subtracted():
    seg = SpeechSegmenter(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500, frame_ms=20)
    # 50 frames (1000 ms) of silence, then speech at exactly the threshold.
    events = run(seg, [0.1] * 50 + [0.49] * 5 + [0.5] + [0.9] * 10)
    assert len(events) == 1
    index, start = events[0]
    assert index == 55
    assert start == SegmentStart(audio_start_ms=55 * 20 - 300, decided_at_ms=56 * 20)
    assert seg.in_speech


def test_start_padding_is_clamped_at_zero():
    seg = SpeechSegmenter(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500, frame_ms=20)
    (_, start), = run(seg, [0.0] * 5 + [0.8])
    assert start.audio_start_ms == 0  # 100 ms - 300 ms, clamped
    assert start.decided_at_ms == 120


def test_stop_after_silence_duration():
    seg = SpeechSegmenter(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=200, frame_ms=20, hysteresis=0.15)
    probs = [0.0] * 10 + [0.9] * 30 + [0.0] * 20
    events = run(seg, probs)
    assert [type(b) for _, b in events] == [SegmentStart, SegmentEnd]
    (_, start), (end_index, end) = events
    assert start.audio_start_ms == 200
    # Last speech frame is index 39 (ends at 800 ms); 200 ms of silence = 10 frames later.
    assert end.audio_end_ms == 800
    assert end_index == 49
    assert end.decided_at_ms == 1000
    assert not seg.in_speech


def test_a_pause_shorter_than_silence_duration_does_not_end_the_turn():
    seg = SpeechSegmenter(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=300, frame_ms=20)
    probs = [0.9] * 20 + [0.0] * 14 + [0.9] * 20 + [0.0] * 20  # 280 ms pause, then 400 ms more speech
    events = run(seg, probs)
    assert [type(b) for _, b in events] == [SegmentStart, SegmentEnd]
    assert events[1][1].audio_end_ms == (20 + 14 + 20) * 20


def test_hysteresis_keeps_speech_going_just_below_threshold():
    seg = SpeechSegmenter(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=100, frame_ms=20, hysteresis=0.15)
    events = run(seg, [0.9] * 5 + [0.4] * 30)  # 0.4 >= 0.5 - 0.15: still speech
    assert [type(b) for _, b in events] == [SegmentStart]
    events = run(seg, [0.3] * 5)
    assert [type(b) for _, b in events] == [SegmentEnd]
    assert events[0][1].audio_end_ms == 35 * 20


def test_min_speech_ms_suppresses_a_short_blip():
    seg = SpeechSegmenter(threshold=0.5, prefix_padding_ms=100, silence_duration_ms=200, frame_ms=20, min_speech_ms=100)
    # A 60 ms click (3 frames) is not speech.
    assert run(seg, [0.0] * 10 + [0.95] * 3 + [0.0] * 20) == []
    assert not seg.in_speech
    # 100 ms of speech (5 frames) is; the start is where the run began, minus padding.
    events = run(seg, [0.9] * 5)
    (index, start), = events
    assert index == 33 + 4
    assert start.audio_start_ms == 33 * 20 - 100


def test_without_min_speech_a_single_frame_starts_speech():
    seg = SpeechSegmenter(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=200, frame_ms=20)
    assert [type(b) for _, b in run(seg, [0.0, 0.95, 0.0])] == [SegmentStart]


def test_reconfigure_changes_threshold_and_silence():
    seg = SpeechSegmenter(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500, frame_ms=20)
    assert [type(b) for _, b in run(seg, [0.6])] == [SegmentStart]
    seg.reset()
    seg.configure(threshold=0.8, prefix_padding_ms=40, silence_duration_ms=100)
    assert (seg.threshold, seg.prefix_padding_ms, seg.silence_duration_ms) == (0.8, 40, 100)
    assert run(seg, [0.0] * 10 + [0.7] * 10) == []  # 0.7 no longer counts as speech
    events = run(seg, [0.85] + [0.0] * 5)
    assert [type(b) for _, b in events] == [SegmentStart, SegmentEnd]
    start, end = events[0][1], events[1][1]
    assert start.audio_start_ms == 21 * 20 - 40
    assert end.audio_end_ms == 22 * 20
    assert events[1][0] == 21 + 5  # 100 ms of silence after the last speech frame


def test_configure_clamps_out_of_range_values():
    seg = SpeechSegmenter()
    seg.configure(threshold=1.7, prefix_padding_ms=-5, silence_duration_ms=-1, min_speech_ms=-3, hysteresis=-1)
    assert (seg.threshold, seg.prefix_padding_ms, seg.silence_duration_ms, seg.min_speech_ms, seg.hysteresis) == (
        1.0, 0, 0, 0.0, 0.0)


def test_reset_forgets_speech_but_keeps_the_clock():
    seg = SpeechSegmenter(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=200, frame_ms=32)
    run(seg, [0.0] * 10 + [0.9] * 3)
    assert seg.in_speech and seg.now_ms == 13 * 32
    seg.reset()
    assert not seg.in_speech and seg.now_ms == 13 * 32
    (_, start), = run(seg, [0.9])
    assert start.audio_start_ms == 13 * 32


@pytest.mark.parametrize("frame_ms", [10.0, 32.0])
def test_times_scale_with_frame_length(frame_ms):
    seg = SpeechSegmenter(threshold=0.5, prefix_padding_ms=0, silence_duration_ms=0, frame_ms=frame_ms)
    events = run(seg, [0.0] * 7 + [0.9] * 4 + [0.0])
    assert events[0][1].audio_start_ms == int(7 * frame_ms)
    assert events[1][1].audio_end_ms == int(11 * frame_ms)
