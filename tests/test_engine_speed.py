"""The engine speaks at the session's `audio.output.speed`, over a real WebSocket on 127.0.0.1.

Durations are the summed PCM of `response.output_audio.delta` events. Piper's phoneme durations have a
random part (`noise_w`) and are rounded up to whole frames after scaling, so speed 1.5 gives about 0.74
of the length rather than 0.67, and 0.5 about 1.8 rather than 2: the ratios are checked within bands.
Also: speech prepared during a pause is keyed by speed, so a speed changed after the pause never gets
the old audio, and each synthesizer honours `speed` on its own.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import Any

import numpy as np
import pytest

from desktop.engine.realtime_connection import RealtimeConnection, _Speculation
from desktop.engine.speech import EspeakSynthesizer
from desktop.engine.speech_models import SpeechModels
from tests.test_engine_conformance import TimedPeer, models, run_scenario, types_of, user_text  # noqa: F401 - fixture
from tests.test_engine_protocol import MANUAL_WITH_TRANSCRIPTION, RATE, decoded_audio, load_wav, server_vad_session, silence

pytestmark = pytest.mark.slow

ASK = "Repeat after me: the quick brown fox jumps over the lazy dog."
PREPARED_LOG = "speaking a first sentence prepared during the pause"
#: Answers averaged per speed: Piper's durations vary by a few per cent from one synthesis to the next.
REPEATS = 2


def _speed_session(speed: float) -> dict[str, Any]:
    return {"type": "realtime", "audio": {"output": {"speed": speed}}}


async def _spoken_answer(peer: TimedPeer) -> tuple[str, float]:
    """response.create, then (the answer's transcript, its audio's length in seconds)."""
    mark = peer.mark()
    await peer.send("response.create")
    done = (await peer.until("response.done"))["response"]
    assert done["status"] == "completed", done
    pcm = decoded_audio(peer.received[mark:])
    assert len(pcm), "no audio"
    return done["output"][0]["content"][0]["transcript"], len(pcm) / RATE


def test_session_speed_scales_the_length_of_the_same_answer(models):
    measured: dict[float, float] = {}

    async def scenario(peer: TimedPeer) -> None:
        session = await peer.update(MANUAL_WITH_TRANSCRIPTION)
        assert session["audio"]["output"]["speed"] == 1.0
        await peer.send("conversation.item.create", item=user_text(ASK))
        await peer.until("conversation.item.done")
        transcripts = set()
        for speed in (1.0, 1.5, 0.5):
            session = await peer.update(_speed_session(speed))
            assert session["audio"]["output"]["speed"] == speed  # session.updated reports it
            seconds = []
            for _ in range(REPEATS):
                transcript, length = await _spoken_answer(peer)
                transcripts.add(transcript)
                seconds.append(length)
            measured[speed] = sum(seconds) / REPEATS
        assert len(transcripts) == 1 and "lazy dog" in transcripts.pop().lower()

    run_scenario(models, scenario)
    faster, slower = measured[1.5] / measured[1.0], measured[0.5] / measured[1.0]
    report = f"seconds by speed {measured}, ratios 1.5: {faster:.3f}, 0.5: {slower:.3f}"
    assert 0.55 <= faster <= 0.8, report
    assert 1.6 <= slower <= 2.4, report


def test_a_response_keeps_the_speed_it_started_with(models):
    """The API applies a speed change between turns; a session.update during an answer leaves it alone."""
    measured: dict[str, float] = {}

    async def scenario(peer: TimedPeer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        await peer.send("conversation.item.create", item=user_text(ASK))
        await peer.until("conversation.item.done")
        _, measured["1.0"] = await _spoken_answer(peer)
        mark = peer.mark()
        await peer.send("response.create")
        await peer.until("response.created")
        await peer.update(_speed_session(1.5))
        done = (await peer.until("response.done"))["response"]
        assert done["status"] == "completed", done
        measured["1.0, changed while speaking"] = len(decoded_audio(peer.received[mark:])) / RATE
        _, measured["1.5"] = await _spoken_answer(peer)

    run_scenario(models, scenario)
    assert 0.85 <= measured["1.0, changed while speaking"] / measured["1.0"] <= 1.15, measured
    assert 0.55 <= measured["1.5"] / measured["1.0"] <= 0.8, measured


def test_speech_prepared_during_a_pause_is_not_served_after_a_speed_change(models, caplog):
    """Two identical spoken turns: the first answer is the one prepared during the pause; after the second
    pause the speed changes, so that answer must be synthesized again at the new speed."""
    caplog.set_level(logging.DEBUG, logger="desktop.engine.realtime_connection")
    turn = np.concatenate([silence(500), load_wav("repeat_after_me.wav"), silence(1200)])
    vad = server_vad_session(silence_duration_ms=500)
    vad["audio"]["input"]["turn_detection"]["create_response"] = False
    measured: dict[float, float] = {}
    served_prepared: dict[float, bool] = {}

    async def spoken_turn(peer: TimedPeer) -> None:
        mark = peer.mark()
        await peer.append(turn, chunk_ms=100)
        await peer.until("conversation.item.input_audio_transcription.completed")
        assert "response.created" not in types_of(peer.received[mark:])

    async def scenario(peer: TimedPeer) -> None:
        await peer.update(vad)
        for speed in (1.0, 1.5):
            await spoken_turn(peer)
            if speed != 1.0:
                await peer.update(_speed_session(speed))
            caplog.clear()
            transcript, measured[speed] = await _spoken_answer(peer)
            assert "quick brown fox" in transcript.lower(), transcript
            served_prepared[speed] = any(PREPARED_LOG in r.getMessage() for r in caplog.records)

    run_scenario(models, scenario)
    assert served_prepared == {1.0: True, 1.5: False}, served_prepared
    assert 0.55 <= measured[1.5] / measured[1.0] <= 0.8, measured


def test_prepared_speech_is_keyed_by_sentence_and_speed(models):
    async def main() -> None:
        sent: list[str] = []

        async def send_text(text: str) -> None:
            sent.append(text)

        connection = RealtimeConnection(send_text, models)
        connection.session["audio"]["output"]["speed"] = 1.5

        async def transcript() -> str:
            return "Repeat after me: the quick brown fox."

        await connection._prepare_answer(_Speculation(asyncio.ensure_future(transcript()), samples=0))
        sentence = "You said: the quick brown fox."
        assert list(connection._prepared_speech) == [(sentence, 1.5)]
        assert await connection._prepared(sentence, 1.0) is None  # not served at another speed ...
        assert list(connection._prepared_speech) == [(sentence, 1.5)]  # ... nor lost for its own
        pcm = await connection._prepared(sentence, 1.5)
        assert pcm is not None and len(pcm) > RATE // 2
        assert not connection._prepared_speech
        fresh = await models.synthesize_sentence(sentence, speed=1.0)
        assert 0.55 <= len(pcm) / len(fresh) <= 0.8, (len(pcm), len(fresh))

    asyncio.run(main())


@pytest.mark.parametrize("speed", [0.5, 1.5])
def test_piper_length_scale_follows_speed(models: SpeechModels, speed: float):
    models.ready.wait()
    sentence = "The quick brown fox jumps over the lazy dog."
    normal = len(models.tts.synthesize_sentence(sentence))
    ratio = len(models.tts.synthesize_sentence(sentence, speed=speed)) / normal
    assert 0.8 / speed <= ratio <= 1.2 / speed, ratio
    assert len(models.tts.synthesize_sentence(sentence, speed=1.0)) == pytest.approx(normal, rel=0.15)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_words_per_minute_follow_speed():
    synth = EspeakSynthesizer()
    sentence = "The quick brown fox jumps over the lazy dog."
    normal = len(synth.synthesize_sentence(sentence))
    for speed in (0.5, 1.5):
        ratio = len(synth.synthesize_sentence(sentence, speed=speed)) / normal
        assert 0.8 / speed <= ratio <= 1.2 / speed, (speed, ratio)
    # espeak-ng speaks no slower than 80 words a minute: 0.25 of 160 is spoken like 0.5.
    slowest = len(synth.synthesize_sentence(sentence, speed=0.25)) / normal
    assert 1.6 <= slowest <= 2.4, slowest
