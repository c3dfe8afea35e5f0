"""The official `openai` SDK's realtime client holds a conversation with the embedded engine.

`AsyncOpenAI(websocket_base_url="ws://127.0.0.1:PORT/v1").realtime.connect(model=...)` opens
`/v1/realtime?model=...` with a bearer key, exactly as it would against the real API. The SDK parses every
server event into its own typed models, so an event the engine got wrong would fail here as well.
"""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from desktop.engine.server import EngineServer
from desktop.engine.speech_models import SpeechModels
from tests.test_engine_protocol import MANIFEST, load_wav, silence, words

pytestmark = pytest.mark.slow

openai = pytest.importorskip("openai")


async def _events_until(connection, done_type: str, timeout: float = 60.0) -> list:
    events = []

    async def collect() -> None:
        async for event in connection:
            events.append(event)
            if event.type == done_type:
                return

    await asyncio.wait_for(collect(), timeout)
    return events


def test_openai_sdk_realtime_client_converses_with_the_engine():
    async def main() -> None:
        models = SpeechModels()
        server = EngineServer(models=models)
        port = await server.start("127.0.0.1", 0)
        try:
            client = openai.AsyncOpenAI(api_key="sk-not-needed", websocket_base_url=f"ws://127.0.0.1:{port}/v1")
            async with client.realtime.connect(model="gpt-realtime") as connection:
                created = await asyncio.wait_for(connection.recv(), 30)
                assert created.type == "session.created"

                await connection.session.update(session={
                    "type": "realtime",
                    "instructions": "You are a test peer.",
                    "audio": {"input": {
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    }},
                })
                updated = await _events_until(connection, "session.updated")
                session = updated[-1].session
                assert session.instructions == "You are a test peer."
                assert session.audio.input.turn_detection.silence_duration_ms == 500

                # A typed turn.
                await connection.conversation.item.create(item={
                    "type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": "Please repeat after me: blue whales sing."}],
                })
                await connection.response.create()
                events = await _events_until(connection, "response.done")
                done = events[-1].response
                assert done.status == "completed"
                transcript = "".join(e.delta for e in events if e.type == "response.output_audio_transcript.delta")
                assert "blue whales sing" in transcript.lower()
                audio = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta")
                assert len(audio) > 2 * 24000 // 2  # more than half a second of speech

                # A spoken turn, ended by the server's VAD, answered by itself.
                speech = np.concatenate([silence(300), load_wav("what_time.wav"), silence(900)])
                step = 2400  # 100 ms
                for i in range(0, len(speech), step):
                    await connection.input_audio_buffer.append(audio=base64.b64encode(speech[i:i + step].tobytes()).decode())
                events = await _events_until(connection, "response.done")
                kinds = [e.type for e in events]
                for expected in ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                                 "input_audio_buffer.committed", "response.created", "response.output_audio.delta"):
                    assert expected in kinds, (expected, kinds)
                heard = [e for e in events if e.type == "conversation.item.input_audio_transcription.completed"]
                if not heard:  # the transcript may come after the answer: keep listening for it
                    heard = (await _events_until(connection, "conversation.item.input_audio_transcription.completed"))[-1:]
                assert set(MANIFEST["what_time.wav"]["key_words"]) <= words(heard[0].transcript)
                answer = [e for e in events if e.type == "response.output_audio_transcript.done"][0].transcript
                assert answer.lower().startswith("it is"), answer
                assert events[-1].response.status == "completed"
        finally:
            await server.stop()

    asyncio.run(main())
