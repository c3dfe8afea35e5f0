"""The embedded engine over a real WebSocket: the GA Realtime protocol as a client sees it.

Each test starts an `EngineServer` on 127.0.0.1 (port 0) inside its own `asyncio.run`, connects with the
`websockets` client, and checks every server event it receives against the openai SDK's GA types
(`validate_server_event`). The speech models are loaded once per module and shared by the servers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import wave
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from desktop.core.pcm import rms_dbfs
from desktop.core.session_config import ManualTurns, ServerVad, SessionConfig
from desktop.engine.server import EngineServer
from desktop.engine.speech_models import SpeechModels
from tests.protocol_oracle import validate_client_event, validate_server_event

pytestmark = pytest.mark.slow

AUDIO = Path(__file__).parent / "fixtures" / "audio"
MANIFEST = json.loads((AUDIO / "manifest.json").read_text(encoding="utf-8"))
RATE = 24000
CHUNK_MS = 20
#: The real API's session.created / session.updated carry the session's `id` and `object`
#: ("realtime.session"); the SDK's RealtimeSessionCreateRequest type lacks them. Tolerate exactly these.
SERVER_EXTRAS_OF_THE_REAL_API = frozenset({"session.id", "session.object"})
#: Generous per-event wait: model inference on 2 slow cores.
TIMEOUT = 30.0


def load_wav(name: str) -> np.ndarray:
    with wave.open(str(AUDIO / name), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def speech_span_ms(pcm: np.ndarray, floor_dbfs: float = -45.0) -> tuple[int, int]:
    """First and last 10 ms window above the floor: where the speech in a fixture is."""
    win = RATE // 100
    loud = [i for i in range(0, len(pcm), win) if rms_dbfs(pcm[i:i + win]) > floor_dbfs]
    return loud[0] * 1000 // RATE, (loud[-1] + win) * 1000 // RATE


def silence(ms: int) -> np.ndarray:
    """A quiet noise floor (about -70 dBFS), like a real microphone between words."""
    rng = np.random.default_rng(ms)
    return rng.normal(0, 10, ms * RATE // 1000).astype("<i2")


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


class _SharedModels(SpeechModels):
    """Loaded once for the module; the servers' stop() must not shut the shared pool down."""

    def shutdown(self) -> None:  # noqa: D401 - see class doc
        pass

    def really_shutdown(self) -> None:
        super().shutdown()


@pytest.fixture(scope="module")
def models():
    shared = _SharedModels()
    shared.start_loading()
    yield shared
    shared.really_shutdown()


class Peer:
    """The client side of one connection: sends GA client events, validates every server event."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.n = 0
        self.received: list[dict[str, Any]] = []
        self._unread: list[dict[str, Any]] = []

    async def send(self, type_: str, **body: Any) -> str:
        self.n += 1
        event = {"type": type_, "event_id": f"evt_test_{self.n}", **body}
        validate_client_event(event)
        await self.ws.send(json.dumps(event))
        return event["event_id"]

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        message = await asyncio.wait_for(self.ws.recv(), timeout)
        event = json.loads(message)
        validate_server_event(event, allow_extra=SERVER_EXTRAS_OF_THE_REAL_API)
        self.received.append(event)
        self._unread.append(event)
        return event

    async def until(self, *types: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The oldest event of one of `types` not yet returned by `until` (waiting for it if needed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self._unread:
                if event["type"] in types:
                    self._unread.remove(event)
                    return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [e["type"] for e in self.received[-15:]]
                raise AssertionError(f"no {types} within {timeout} s; last events: {seen}")
            try:
                await self.recv(remaining)
            except asyncio.TimeoutError:
                continue

    def mark(self) -> int:
        """Forget the events not yet returned by `until`; returns the index of the next event."""
        self._unread.clear()
        return len(self.received)

    def since(self, index: int, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.received[index:] if e["type"] == type_]

    async def append(self, pcm: np.ndarray, chunk_ms: int = CHUNK_MS) -> None:
        step = chunk_ms * RATE // 1000
        for i in range(0, len(pcm), step):
            await self.send("input_audio_buffer.append", audio=base64.b64encode(pcm[i:i + step].tobytes()).decode())

    async def update(self, session: dict[str, Any]) -> dict[str, Any]:
        eid = await self.send("session.update", session=session)
        event = await self.until("session.updated", "error")
        assert event["type"] == "session.updated", f"session.update {eid} was refused: {event}"
        return event["session"]

    async def error_for(self, event_id: str) -> dict[str, Any]:
        event = await self.until("error")
        assert event["error"]["event_id"] == event_id, event
        return event["error"]


def run_engine(models: SpeechModels, scenario: Callable[[Peer], Awaitable[None]]) -> None:
    async def main() -> None:
        server = EngineServer(models=models)
        port = await server.start("127.0.0.1", 0)
        try:
            async with connect(f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime",
                               additional_headers={"Authorization": "Bearer sk-test"}) as ws:
                peer = Peer(ws)
                first = await peer.recv()
                assert first["type"] == "session.created", first
                await scenario(peer)
        finally:
            await server.stop()

    asyncio.run(main())


MANUAL_WITH_TRANSCRIPTION = {
    "type": "realtime",
    "audio": {"input": {"turn_detection": None, "transcription": {"model": "whisper-1"}}},
}


def server_vad_session(**vad: Any) -> dict[str, Any]:
    return SessionConfig(turn_detection=ServerVad(**vad), transcription_model="whisper-1").to_wire()


def decoded_audio(events: list[dict[str, Any]]) -> np.ndarray:
    parts = [np.frombuffer(base64.b64decode(e["delta"]), dtype="<i2") for e in events
             if e["type"] == "response.output_audio.delta"]
    return np.concatenate(parts) if parts else np.zeros(0, dtype="<i2")


# ----------------------------------------------------------------------------- session


def test_session_created_first_and_update_merges(models):
    async def scenario(peer: Peer) -> None:
        created = peer.received[0]["session"]
        assert created["type"] == "realtime"
        assert created["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert created["audio"]["input"]["turn_detection"]["type"] == "server_vad"

        s1 = await peer.update({"type": "realtime", "instructions": "Be terse.",
                                "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 700}}}})
        td = s1["audio"]["input"]["turn_detection"]
        assert s1["instructions"] == "Be terse."
        assert (td["type"], td["silence_duration_ms"], td["threshold"], td["prefix_padding_ms"]) == ("server_vad", 700, 0.5, 300)
        assert s1["audio"]["output"] == created["audio"]["output"]
        assert s1["id"] == created["id"]

        # Only the fields sent change.
        s2 = await peer.update({"type": "realtime", "output_modalities": ["text"]})
        assert s2["output_modalities"] == ["text"]
        assert s2["instructions"] == "Be terse."
        assert s2["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 700

        s3 = await peer.update({"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "semantic_vad", "eagerness": "high"}, "transcription": {"model": "whisper-1"}}}})
        assert s3["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
        assert s3["audio"]["input"]["turn_detection"]["eagerness"] == "high"
        assert s3["audio"]["input"]["transcription"]["model"] == "whisper-1"

        s4 = await peer.update(SessionConfig(turn_detection=ManualTurns()).to_wire())
        assert s4["audio"]["input"]["turn_detection"] is None
        assert isinstance(SessionConfig.from_wire(s4).turn_detection, ManualTurns)
        assert s4["output_modalities"] == ["audio"]

    run_engine(models, scenario)


@pytest.mark.parametrize(
    "session, param_part",
    [
        ({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 1.5}}}}, "threshold"),
        ({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": -1}}}},
         "silence_duration_ms"),
        ({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "none"}}}}, "turn_detection"),
        ({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "eager"}}}},
         "eagerness"),
        ({"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}, "format"),
        ({"type": "realtime", "output_modalities": ["video"]}, "output_modalities"),
        ({"type": "realtime", "instructions": 42}, "instructions"),
        ({"type": "transcription"}, "session.type"),
    ],
)
def test_invalid_session_update_is_an_error_and_changes_nothing(models, session, param_part):
    async def scenario(peer: Peer) -> None:
        before = await peer.update({"type": "realtime", "instructions": "Keep me."})
        peer.n += 1
        eid = f"evt_bad_{peer.n}"
        await peer.send_raw(json.dumps({"type": "session.update", "event_id": eid, "session": session}))
        error = await peer.error_for(eid)
        assert error["type"] == "invalid_request_error"
        assert param_part in (error["param"] or "") + error["message"]
        after = await peer.update({"type": "realtime"})
        assert after == before

    run_engine(models, scenario)


# ----------------------------------------------------------------------------- manual turns


def test_manual_commit_transcribes_the_turn(models):
    name = "hello_weather.wav"

    async def scenario(peer: Peer) -> None:
        session = await peer.update(MANUAL_WITH_TRANSCRIPTION)
        assert session["audio"]["input"]["turn_detection"] is None
        mark = peer.mark()
        await peer.append(load_wav(name), chunk_ms=100)
        await peer.send("input_audio_buffer.commit")
        committed = await peer.until("input_audio_buffer.committed")
        item_id = committed["item_id"]
        assert committed["previous_item_id"] is None
        done = await peer.until("conversation.item.input_audio_transcription.completed")
        assert done["item_id"] == item_id
        heard = words(done["transcript"])
        assert set(MANIFEST[name]["key_words"]) <= heard, done["transcript"]
        added = peer.since(mark, "conversation.item.added")
        assert [e["item"]["id"] for e in added] == [item_id]
        assert added[0]["item"]["role"] == "user"
        # Manual turns: no VAD events, no automatic response.
        assert not peer.since(mark, "input_audio_buffer.speech_started")
        assert not peer.since(mark, "response.created")
        # A second turn follows the first.
        await peer.append(load_wav("what_time.wav"), chunk_ms=100)
        await peer.send("input_audio_buffer.commit")
        second = await peer.until("input_audio_buffer.committed")
        assert second["previous_item_id"] == item_id

    run_engine(models, scenario)


def test_commit_of_less_than_100_ms_is_refused(models):
    async def scenario(peer: Peer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        await peer.append(load_wav("hello_weather.wav")[: 80 * RATE // 1000])
        eid = await peer.send("input_audio_buffer.commit")
        error = await peer.error_for(eid)
        assert error["code"] == "input_audio_buffer_commit_empty"
        empty = await peer.send("input_audio_buffer.commit")
        assert (await peer.error_for(empty))["code"] == "input_audio_buffer_commit_empty"
        # Clearing works and reports it.
        await peer.send("input_audio_buffer.clear")
        await peer.until("input_audio_buffer.cleared")
        assert not [e for e in peer.received if e["type"] == "input_audio_buffer.committed"]

    run_engine(models, scenario)


def test_one_response_at_a_time_and_cancel(models):
    async def scenario(peer: Peer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        nothing = await peer.send("response.cancel")
        assert (await peer.error_for(nothing))["code"] == "response_cancel_not_active"

        await peer.send("conversation.item.create", item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Tell me a long story about a dragon."}]})
        await peer.send("response.create")
        second = await peer.send("response.create")
        created = await peer.until("response.created")
        error = await peer.error_for(second)
        assert error["code"] == "conversation_already_has_active_response"
        await peer.until("response.output_audio.delta")
        await peer.send("response.cancel")
        done = await peer.until("response.done")
        response = done["response"]
        assert response["id"] == created["response"]["id"]
        assert response["status"] == "cancelled"
        assert response["status_details"]["reason"] == "client_cancelled"
        # The story was cut: its audio is far shorter than the whole story would be.
        heard = decoded_audio(peer.received)
        assert 0 < len(heard) < 20 * RATE
        again = await peer.send("response.cancel")
        assert (await peer.error_for(again))["code"] == "response_cancel_not_active"

    run_engine(models, scenario)


def test_text_item_and_response_create_give_a_spoken_answer(models):
    async def scenario(peer: Peer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        await peer.send("conversation.item.create", item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Please repeat after me: purple elephants dance."}]})
        added = await peer.until("conversation.item.added")
        assert added["item"]["role"] == "user"
        assert added["item"]["content"][0]["text"] == "Please repeat after me: purple elephants dance."
        mark = peer.mark()
        await peer.send("response.create")
        done = await peer.until("response.done")
        assert done["response"]["status"] == "completed"
        transcript = peer.since(mark, "response.output_audio_transcript.done")[0]["transcript"]
        assert "purple elephants dance" in transcript.lower()
        assert "".join(e["delta"] for e in peer.since(mark, "response.output_audio_transcript.delta")) == transcript
        pcm = decoded_audio(peer.received[mark:])
        assert rms_dbfs(pcm) > -40
        assert 0.8 * RATE < len(pcm) < 8 * RATE
        assistant = peer.since(mark, "conversation.item.added")[0]
        assert assistant["item"]["role"] == "assistant"
        assert assistant["previous_item_id"] == added["item"]["id"]

    run_engine(models, scenario)


def test_truncate_within_and_beyond_the_item_audio(models):
    async def scenario(peer: Peer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        user_item = await peer.send("conversation.item.create", item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Hello there."}]})
        user = (await peer.until("conversation.item.added"))["item"]["id"]
        mark = peer.mark()
        await peer.send("response.create")
        done = await peer.until("response.done")
        assert done["response"]["status"] == "completed"
        item_id = done["response"]["output"][0]["id"]
        have_ms = len(decoded_audio(peer.received[mark:])) * 1000 // RATE
        assert have_ms > 500

        beyond = await peer.send("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=have_ms + 1000)
        error = await peer.error_for(beyond)
        assert error["param"] == "audio_end_ms"
        user_audio = await peer.send("conversation.item.truncate", item_id=user, content_index=0, audio_end_ms=10)
        await peer.error_for(user_audio)  # a user text item has no audio
        missing = await peer.send("conversation.item.truncate", item_id="item_nope", content_index=0, audio_end_ms=10)
        assert (await peer.error_for(missing))["code"] == "item_not_found"

        await peer.send("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=400)
        truncated = await peer.until("conversation.item.truncated", "error")
        assert truncated["type"] == "conversation.item.truncated", truncated
        assert (truncated["item_id"], truncated["audio_end_ms"], truncated["content_index"]) == (item_id, 400, 0)
        # The item now holds 400 ms: truncating to 500 ms is beyond it.
        after = await peer.send("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=500)
        await peer.error_for(after)
        await peer.send("conversation.item.retrieve", item_id=item_id)
        retrieved = await peer.until("conversation.item.retrieved")
        assert retrieved["item"]["id"] == item_id
        assert len(retrieved["item"]["content"][0]["transcript"]) < len(
            peer.since(mark, "response.output_audio_transcript.done")[0]["transcript"])
        assert user_item

    run_engine(models, scenario)


def test_old_items_let_go_of_their_audio_so_long_sessions_stay_bounded(models, monkeypatch):
    from desktop.engine import realtime_connection

    monkeypatch.setattr(realtime_connection, "MAX_RETAINED_AUDIO_MS", 2500)

    async def scenario(peer: Peer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        answers = []
        for text in ("Hello there.", "What time is it?", "Repeat after me: the third answer."):
            await peer.send("conversation.item.create", item={"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": text}]})
            await peer.until("conversation.item.added")
            mark = peer.mark()
            await peer.send("response.create")
            done = await peer.until("response.done")
            answers.append((done["response"]["output"][0]["id"], len(decoded_audio(peer.received[mark:])) * 1000 // RATE))
        assert all(ms > 800 for _, ms in answers), answers
        # Over the 2.5 s budget: the oldest answer let go of its audio; the newest keeps it (and its text).
        old = await peer.send("conversation.item.truncate", item_id=answers[0][0], content_index=0, audio_end_ms=100)
        error = await peer.error_for(old)
        assert "no longer keeps its audio" in error["message"]
        await peer.send("conversation.item.retrieve", item_id=answers[0][0])
        assert (await peer.until("conversation.item.retrieved"))["item"]["content"][0]["transcript"]
        await peer.send("conversation.item.truncate", item_id=answers[-1][0], content_index=0, audio_end_ms=300)
        assert (await peer.until("conversation.item.truncated", "error"))["type"] == "conversation.item.truncated"

    run_engine(models, scenario)


# ----------------------------------------------------------------------------- server VAD


def test_server_vad_turn_end_to_end(models):
    name = "hello_weather.wav"
    speech = load_wav(name)
    lead_ms, tail_ms, padding = 1000, 1500, 300
    onset, offset = speech_span_ms(speech)

    async def scenario(peer: Peer) -> None:
        session = await peer.update(server_vad_session(prefix_padding_ms=padding, silence_duration_ms=500))
        assert session["audio"]["input"]["turn_detection"]["prefix_padding_ms"] == padding
        await peer.append(np.concatenate([silence(lead_ms), speech, silence(tail_ms)]))
        started = await peer.until("input_audio_buffer.speech_started")
        stopped = await peer.until("input_audio_buffer.speech_stopped")
        expected_start = max(0, lead_ms + onset - padding)
        assert abs(started["audio_start_ms"] - expected_start) <= 250, (started, expected_start)
        assert abs(stopped["audio_end_ms"] - (lead_ms + offset)) <= 250, (stopped, lead_ms + offset)
        assert stopped["item_id"] == started["item_id"]
        committed = await peer.until("input_audio_buffer.committed")
        assert committed["item_id"] == started["item_id"]
        done = await peer.until("response.done")
        response = done["response"]
        assert response["status"] == "completed", response

        transcripts = [e for e in peer.received if e["type"] == "conversation.item.input_audio_transcription.completed"]
        assert len(transcripts) == 1 and transcripts[0]["item_id"] == committed["item_id"]
        assert set(MANIFEST[name]["key_words"]) <= words(transcripts[0]["transcript"]), transcripts[0]
        types = [e["type"] for e in peer.received]
        assert types.index("response.created") > types.index("input_audio_buffer.committed")
        assert types.count("response.created") == 1

        pcm = decoded_audio(peer.received)
        final = [e for e in peer.received if e["type"] == "response.output_audio_transcript.done"][0]["transcript"]
        deltas = "".join(e["delta"] for e in peer.received if e["type"] == "response.output_audio_transcript.delta")
        assert deltas == final and final
        assert "weather" in final.lower()
        assert rms_dbfs(pcm) > -40, "the answer is silent"
        seconds = len(pcm) / RATE
        # Speech runs at roughly 8-25 characters a second.
        assert len(final) / 25 <= seconds <= len(final) / 8, (seconds, len(final))
        ids = {e["item_id"] for e in peer.received if e["type"] == "response.output_audio.delta"}
        assert ids == {response["output"][0]["id"]}
        assert response["usage"]["output_tokens"] > 0

    run_engine(models, scenario)


def test_barge_in_cancels_the_response_with_turn_detected(models):
    story = np.concatenate([silence(300), load_wav("tell_story.wav"), silence(1000)])
    interruption = load_wav("stop_talking.wav")
    onset, _ = speech_span_ms(interruption)

    async def scenario(peer: Peer) -> None:
        await peer.update(server_vad_session(silence_duration_ms=400))
        await peer.append(story)
        await peer.until("input_audio_buffer.speech_started")
        await peer.until("input_audio_buffer.speech_stopped")
        created = await peer.until("response.created")
        await peer.until("response.output_audio.delta")
        mark = peer.mark()
        # The user talks over the story.
        await peer.append(np.concatenate([interruption, silence(800)]))
        started = await peer.until("input_audio_buffer.speech_started")
        done = await peer.until("response.done")
        response = done["response"]
        assert response["id"] == created["response"]["id"]
        assert response["status"] == "cancelled"
        assert response["status_details"]["reason"] == "turn_detected"
        types = [e["type"] for e in peer.received[mark:]]
        assert types.index("input_audio_buffer.speech_started") < types.index("response.done")
        # Counted from the session's first audio, prefix padding (300 ms) included.
        expected = len(story) * 1000 // RATE + onset - 300
        assert abs(started["audio_start_ms"] - expected) <= 250, (started, expected)
        # The story was cut short: far less audio than the whole story.
        assert len(decoded_audio(peer.received)) < 25 * RATE
        # The interruption is a new user turn, committed after the cancelled answer's item.
        committed = await peer.until("input_audio_buffer.committed")
        assert committed["item_id"] == started["item_id"]
        assert committed["previous_item_id"] == response["output"][0]["id"]

    run_engine(models, scenario)


# ----------------------------------------------------------------------------- robustness


def test_malformed_client_messages_get_errors_and_the_connection_stays_usable(models):
    async def scenario(peer: Peer) -> None:
        await peer.send_raw("this is not json")
        assert (await peer.until("error"))["error"]["code"] == "invalid_json"
        await peer.send_raw("[1, 2, 3]")
        assert (await peer.until("error"))["error"]["type"] == "invalid_request_error"
        bad = [
            ({"type": "response.audio.interrupted", "event_id": "evt_unknown"}, "type"),
            ({"type": "input_audio_buffer.append", "event_id": "evt_noaudio"}, "audio"),
            ({"type": "input_audio_buffer.append", "event_id": "evt_b64", "audio": "@@@ not base64 @@@"}, "audio"),
            ({"type": "input_audio_buffer.append", "event_id": "evt_odd", "audio": "AAAA"}, "audio"),
            ({"type": "conversation.item.create", "event_id": "evt_noitem"}, "item"),
            ({"type": "conversation.item.truncate", "event_id": "evt_noid", "content_index": 0, "audio_end_ms": 5}, "item_id"),
            ({"type": "conversation.item.delete", "event_id": "evt_del", "item_id": "item_missing"}, "item_id"),
            ({"type": "session.update", "event_id": "evt_nosession"}, "session"),
            ({"event_id": "evt_notype"}, "type"),
        ]
        for event, param in bad:
            await peer.send_raw(json.dumps(event))
            error = await peer.error_for(event["event_id"])
            assert error["param"] == param, (event, error)
            assert error["message"]
        # Still usable.
        await peer.send("input_audio_buffer.clear")
        await peer.until("input_audio_buffer.cleared")
        updated = await peer.update({"type": "realtime", "instructions": "Still here."})
        assert updated["instructions"] == "Still here."

    run_engine(models, scenario)


def test_wrong_path_is_refused_with_404(models):
    async def main() -> None:
        server = EngineServer(models=models)
        port = await server.start("127.0.0.1", 0)
        try:
            with pytest.raises(InvalidStatus) as caught:
                async with connect(f"ws://127.0.0.1:{port}/v2/elsewhere"):
                    pass
            assert caught.value.response.status_code == 404
            # The right path still works on the same server.
            async with connect(f"ws://127.0.0.1:{port}/v1/realtime") as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                validate_server_event(first, allow_extra=SERVER_EXTRAS_OF_THE_REAL_API)
                assert first["type"] == "session.created"
        finally:
            await server.stop()

    asyncio.run(main())
