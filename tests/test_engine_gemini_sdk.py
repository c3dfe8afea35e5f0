"""Gemini Live clients converse with the embedded engine's second dialect (BidiGenerateContent).

The official `google-genai` live client (`client.aio.live.connect`) talks to a real EngineServer, exactly as
it would to Google: it builds `wss://HOST/ws/google.ai.generativelanguage.v1beta.GenerativeService.
BidiGenerateContent` from its base URL and sends the key as `x-goog-api-key`. The SDK connects only over
TLS, so the test server has a throwaway self-signed certificate and the client trusts it. The SDK parses
every server message into `types.LiveServerMessage` (pydantic, extra fields forbidden), so a wrong shape
fails there. A raw WebSocket client then checks, more strictly, that every message the engine sends is
exactly what `LiveServerMessage` dumps back (camelCase names, nothing unknown), and the errors and auth.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import ssl
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import soxr
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from desktop.core.pcm import rms_dbfs
from desktop.engine.gemini_live_server import GEMINI_LIVE_PATHS, ResumptionStore, json_schema, pcm_rate
from desktop.engine.server import EngineServer
from desktop.providers import GEMINI_LIVE_PATH
from tests.test_engine_protocol import MANIFEST, load_wav, models, silence, words  # noqa: F401 - `models` is a fixture

pytestmark = pytest.mark.slow

genai = pytest.importorskip("google.genai")
from google.genai import errors, types  # noqa: E402

MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"
#: Generous waits: model inference on 2 shared cores.
TIMEOUT = 90.0
IN_RATE = 16000
OUT_RATE = 24000


# ----------------------------------------------------------------------------- TLS for the SDK


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """(server context, client context): a self-signed certificate for 127.0.0.1, trusted by the client."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


def sdk_client(port: int, client_ssl: ssl.SSLContext, version: str = "v1beta") -> Any:
    return genai.Client(api_key="x", http_options=types.HttpOptions(
        base_url=f"http://127.0.0.1:{port}", api_version=version, async_client_args={"ssl": client_ssl}))


def run_server(models, scenario: Callable[[int], Any], tls_context: ssl.SSLContext | None = None, **options: Any) -> None:
    async def main() -> None:
        server = EngineServer(models=models, **options)
        port = await server.start("127.0.0.1", 0, ssl_context=tls_context)
        try:
            await scenario(port)
        finally:
            await server.stop()

    asyncio.run(main())


# ----------------------------------------------------------------------------- audio


def at_16k(pcm: np.ndarray) -> np.ndarray:
    return soxr.resample(pcm, OUT_RATE, IN_RATE).astype("<i2")


async def speak(session, pcm24: np.ndarray, chunk_ms: int = 100) -> None:
    """Speech (24 kHz fixtures) sent as Gemini wants it: 16 kHz PCM blobs."""
    pcm = at_16k(pcm24)
    step = IN_RATE * chunk_ms // 1000
    for i in range(0, len(pcm), step):
        await session.send_realtime_input(audio=types.Blob(data=pcm[i:i + step].tobytes(), mime_type=f"audio/pcm;rate={IN_RATE}"))
        await asyncio.sleep(0)


def spoken(name: str, before_ms: int = 300, after_ms: int = 1200) -> np.ndarray:
    return np.concatenate([silence(before_ms), load_wav(name), silence(after_ms)])


# ----------------------------------------------------------------------------- the SDK's messages


@dataclass
class Turn:
    messages: list[Any] = field(default_factory=list)

    def contents(self) -> list[Any]:
        return [m.server_content for m in self.messages if m.server_content is not None]

    @property
    def audio(self) -> np.ndarray:
        chunks = []
        for content in self.contents():
            for part in (content.model_turn.parts if content.model_turn else None) or []:
                if part.inline_data is not None:
                    assert part.inline_data.mime_type == "audio/pcm;rate=24000"
                    chunks.append(np.frombuffer(part.inline_data.data, dtype="<i2"))
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype="<i2")

    @property
    def heard(self) -> str:
        return "".join(c.input_transcription.text or "" for c in self.contents() if c.input_transcription)

    @property
    def said(self) -> str:
        return "".join(c.output_transcription.text or "" for c in self.contents() if c.output_transcription)

    @property
    def text(self) -> str:
        return "".join(p.text or "" for c in self.contents() if c.model_turn for p in c.model_turn.parts or [])

    def flag(self, name: str) -> bool:
        return any(getattr(c, name) for c in self.contents())

    @property
    def usage(self) -> Any:
        found = [m.usage_metadata for m in self.messages if m.usage_metadata is not None]
        return found[-1] if found else None


class Live:
    """Reads an SDK session in the background (turn after turn), so that a test can send while it listens."""

    def __init__(self, session) -> None:
        self.session = session
        self.received: list[Any] = []
        self.error: BaseException | None = None
        self._queue: asyncio.Queue = asyncio.Queue()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                async for message in self.session.receive():
                    self._queue.put_nowait(message)
        except Exception as exc:  # noqa: BLE001 - the socket closed: the test looks at how
            self.error = exc
            self._queue.put_nowait(exc)

    async def next(self, timeout: float = TIMEOUT) -> Any:
        message = await asyncio.wait_for(self._queue.get(), timeout)
        if isinstance(message, BaseException):
            self._queue.put_nowait(message)
            raise message
        self.received.append(message)
        return message

    async def until(self, predicate: Callable[[Any], bool], timeout: float = TIMEOUT) -> Turn:
        """The messages up to and including the first for which `predicate` holds."""
        turn = Turn()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.next(max(0.1, deadline - loop.time()))
            turn.messages.append(message)
            if predicate(message):
                return turn

    async def seen(self, predicate: Callable[[Any], bool], timeout: float = TIMEOUT) -> Any:
        """The first message so far, or from now on, for which `predicate` holds."""
        for message in self.received:
            if predicate(message):
                return message
        return (await self.until(predicate, timeout)).messages[-1]

    async def turn(self, timeout: float = TIMEOUT) -> Turn:
        return await self.until(lambda m: bool(m.server_content and m.server_content.turn_complete), timeout)

    async def closed(self, timeout: float) -> BaseException:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.error is None:
            try:
                await self.next(max(0.1, deadline - loop.time()))
            except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, asyncio.TimeoutError):
                    raise
                return exc
        return self.error

    async def stop(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass


def is_real_speech(audio: np.ndarray, text: str) -> None:
    """Audio that is speech of `text`: loud enough, and about as long as the words take to say."""
    seconds = len(audio) / OUT_RATE
    assert rms_dbfs(audio) > -35, rms_dbfs(audio)
    assert 0.03 * len(text) < seconds < 0.2 * len(text) + 1.0, (seconds, text)


def check_usage(usage: Any) -> None:
    assert usage is not None
    assert usage.total_token_count > 0 and usage.response_token_count > 0 and usage.prompt_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.response_token_count
    modalities = {d.modality for d in usage.response_tokens_details}
    assert types.MediaModality.AUDIO in modalities, usage


# ----------------------------------------------------------------------------- SDK tests


def test_sdk_spoken_typed_and_client_content_turns(models, tls):
    server_tls, client_tls = tls

    async def scenario(port: int) -> None:
        config = types.LiveConnectConfig(
            response_modalities=["AUDIO"],
            system_instruction="You are Ada, a test peer.",
            speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Puck"))),
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            realtime_input_config=types.RealtimeInputConfig(automatic_activity_detection=types.AutomaticActivityDetection(
                silence_duration_ms=500, prefix_padding_ms=300,
                start_of_speech_sensitivity=types.StartSensitivity.START_SENSITIVITY_HIGH)),
            context_window_compression=types.ContextWindowCompressionConfig(sliding_window=types.SlidingWindow()),
        )
        async with sdk_client(port, client_tls).aio.live.connect(model=MODEL, config=config) as session:
            live = Live(session)
            # A spoken turn, ended by the engine's activity detection.
            await speak(session, spoken("what_time.wav"))
            turn = await live.turn()
            assert set(MANIFEST["what_time.wav"]["key_words"]) <= words(turn.heard), turn.heard
            assert turn.said.lower().startswith("it is"), turn.said
            is_real_speech(turn.audio, turn.said)
            assert turn.flag("generation_complete") and not turn.flag("interrupted")
            activity = [m.voice_activity.voice_activity_type for m in turn.messages if m.voice_activity is not None]
            assert activity == [types.VoiceActivityType.ACTIVITY_START, types.VoiceActivityType.ACTIVITY_END], activity
            check_usage(turn.usage)
            # A typed turn.
            await session.send_realtime_input(text="Please repeat after me: blue whales sing.")
            turn = await live.turn()
            assert "blue whales sing" in turn.said.lower(), turn.said
            is_real_speech(turn.audio, turn.said)
            assert turn.heard == ""  # nothing was spoken
            # History given as client content, then a turn to answer.
            await session.send_client_content(turns=[
                types.Content(role="user", parts=[types.Part(text="Who are you?")]),
                types.Content(role="model", parts=[types.Part(text="I'm Ada.")]),
            ], turn_complete=False)
            await session.send_client_content(turns=types.Content(role="user", parts=[
                types.Part(text="Please repeat after me: green turtles swim.")]), turn_complete=True)
            turn = await live.turn()
            assert "green turtles swim" in turn.said.lower(), turn.said
            check_usage(turn.usage)
            await live.stop()

    run_server(models, scenario, server_tls)


def test_sdk_text_modality_and_tool_call_round_trip(models, tls):
    server_tls, client_tls = tls
    weather = types.FunctionDeclaration(
        name="get_weather", description="Get the current weather in a city",
        parameters=types.Schema(type=types.Type.OBJECT, properties={"location": types.Schema(type=types.Type.STRING)},
                                required=["location"]))

    async def scenario(port: int) -> None:
        config = types.LiveConnectConfig(response_modalities=["TEXT"], tools=[types.Tool(function_declarations=[weather])])
        async with sdk_client(port, client_tls).aio.live.connect(model=MODEL, config=config) as session:
            live = Live(session)
            await session.send_realtime_input(text="What is the weather like in Paris today?")
            turn = await live.until(lambda m: m.tool_call is not None)
            calls = turn.messages[-1].tool_call.function_calls
            assert [(c.name, c.args) for c in calls] == [("get_weather", {"location": "Paris"})]
            assert calls[0].id
            assert not turn.flag("turn_complete")  # the turn goes on after the tool response
            await session.send_tool_response(function_responses=[
                types.FunctionResponse(id=calls[0].id, name="get_weather", response={"temperature": 18, "sky": "sunny"})])
            turn = await live.turn()
            assert "18" in turn.text and "sunny" in turn.text, turn.text
            assert len(turn.audio) == 0  # TEXT modality: no audio
            assert turn.usage is not None and turn.usage.response_token_count > 0

            # A call the user talks over is cancelled; its late response is ignored.
            await session.send_realtime_input(text="And the weather in Rome?")
            turn = await live.until(lambda m: m.tool_call is not None)
            call = turn.messages[-1].tool_call.function_calls[0]
            assert call.args == {"location": "Rome"}
            await session.send_realtime_input(text="Thank you.")
            turn = await live.until(lambda m: m.tool_call_cancellation is not None)
            assert turn.messages[-1].tool_call_cancellation.ids == [call.id]
            await live.turn()  # the cancelled turn ends
            turn = await live.turn()
            assert "welcome" in turn.text.lower(), turn.text
            await session.send_tool_response(function_responses=[
                types.FunctionResponse(id=call.id, name="get_weather", response={"temperature": 25})])
            with pytest.raises(asyncio.TimeoutError):
                await live.next(timeout=3)
            await live.stop()

    run_server(models, scenario, server_tls)


def test_sdk_manual_activity_turns(models, tls):
    server_tls, client_tls = tls

    async def scenario(port: int) -> None:
        config = types.LiveConnectConfig(
            response_modalities=["AUDIO"], input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            realtime_input_config=types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)))
        async with sdk_client(port, client_tls, version="v1alpha").aio.live.connect(model=MODEL, config=config) as session:
            live = Live(session)
            # Outside activityStart..activityEnd, audio is no part of a turn; and nothing ends a turn by itself.
            await speak(session, spoken("hello_weather.wav"))
            with pytest.raises(asyncio.TimeoutError):
                await live.next(timeout=4)
            await session.send_realtime_input(activity_start=types.ActivityStart())
            await speak(session, spoken("what_time.wav", after_ms=200))
            await session.send_realtime_input(activity_end=types.ActivityEnd())
            turn = await live.turn()
            assert set(MANIFEST["what_time.wav"]["key_words"]) <= words(turn.heard), turn.heard
            assert "weather" not in words(turn.heard)
            assert turn.said.lower().startswith("it is"), turn.said
            is_real_speech(turn.audio, turn.said)
            await live.stop()

    run_server(models, scenario, server_tls)


def test_sdk_barge_in_interrupts_the_answer(models, tls):
    server_tls, client_tls = tls

    async def scenario(port: int) -> None:
        config = types.LiveConnectConfig(
            response_modalities=["AUDIO"], input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            realtime_input_config=types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(silence_duration_ms=400)))
        async with sdk_client(port, client_tls).aio.live.connect(model=MODEL, config=config) as session:
            live = Live(session)
            await speak(session, spoken("tell_story.wav"))
            first = await live.until(lambda m: bool(m.server_content and m.server_content.model_turn))
            # The user talks over the story while it plays.
            await speak(session, spoken("stop_talking.wav", before_ms=0, after_ms=1000))
            story = await live.turn()
            story.messages[:0] = first.messages
            assert story.flag("interrupted")
            index = next(i for i, m in enumerate(story.messages) if m.server_content and m.server_content.interrupted)
            after = Turn(story.messages[index:])
            assert len(after.audio) == 0  # nothing more of the story after the interruption
            assert len(story.audio) < 25 * OUT_RATE  # far from the whole story
            assert "dragon" in story.said.lower() or "once upon" in story.said.lower(), story.said
            # The interruption is the next turn, heard and answered.
            turn = await live.turn()
            assert "stop" in words(story.heard + turn.heard), (story.heard, turn.heard)
            assert len(turn.audio) > 0 and not turn.flag("interrupted")
            await live.stop()

    run_server(models, scenario, server_tls)


def test_sdk_session_resumption_after_go_away(models, tls):
    server_tls, client_tls = tls

    async def scenario(port: int) -> None:
        client = sdk_client(port, client_tls)
        config = types.LiveConnectConfig(response_modalities=["AUDIO"], output_audio_transcription=types.AudioTranscriptionConfig(),
                                         session_resumption=types.SessionResumptionConfig())
        async with client.aio.live.connect(model=MODEL, config=config) as session:
            live = Live(session)
            first = await live.next()
            assert first.session_resumption_update.resumable and first.session_resumption_update.new_handle
            await session.send_realtime_input(text="Please repeat after me: purple elephants dance.")
            turn = await live.turn()
            assert "purple elephants dance" in turn.said.lower()
            update = await live.seen(lambda m: m.session_resumption_update is not None and m is not first)
            handle = update.session_resumption_update.new_handle
            assert update.session_resumption_update.resumable and handle != first.session_resumption_update.new_handle
            go_away = await live.seen(lambda m: m.go_away is not None, timeout=30)
            assert go_away.go_away.time_left == "5s"
            closed = await live.closed(timeout=15)
            assert isinstance(closed, errors.APIError) and closed.code == 1000, closed

        # A new connection with the handle has the conversation: asked to answer without a new turn, the
        # engine answers the last user turn, said on the first connection.
        resumed = config.model_copy(update={"session_resumption": types.SessionResumptionConfig(handle=handle)})
        async with client.aio.live.connect(model=MODEL, config=resumed) as session:
            live = Live(session)
            await session.send_client_content(turn_complete=True)
            turn = await live.turn()
            assert "purple elephants dance" in turn.said.lower(), turn.said
            await live.stop()
        # Without it, a fresh conversation has nothing to answer.
        async with client.aio.live.connect(model=MODEL, config=config) as session:
            live = Live(session)
            await session.send_client_content(turn_complete=True)
            turn = await live.turn()
            assert "purple" not in turn.said.lower(), turn.said
            await live.stop()
        # An unknown handle is refused the Gemini way: the socket closes with 1007 and a reason.
        bad = config.model_copy(update={"session_resumption": types.SessionResumptionConfig(handle="nope")})
        with pytest.raises(errors.APIError) as refused:
            async with client.aio.live.connect(model=MODEL, config=bad):
                pass
        assert refused.value.code == 1007 and "handle" in str(refused.value)

    run_server(models, scenario, server_tls, gemini_session_seconds=3)


# ----------------------------------------------------------------------------- raw wire, strictly


def _same(sent: Any, dumped: Any) -> bool:
    """The engine's message equals the SDK model's dump of it (base64 in either alphabet)."""
    if isinstance(sent, dict) and isinstance(dumped, dict):
        return sent.keys() == dumped.keys() and all(_same(sent[k], dumped[k]) for k in sent)
    if isinstance(sent, list) and isinstance(dumped, list):
        return len(sent) == len(dumped) and all(_same(a, b) for a, b in zip(sent, dumped))
    if isinstance(sent, str) and isinstance(dumped, str) and sent != dumped:
        return base64.b64decode(sent) == base64.urlsafe_b64decode(dumped)
    return sent == dumped


def strict(message: dict[str, Any]) -> Any:
    """`types.LiveServerMessage` of `message`, which must have no unknown or misspelled field."""
    message = json.loads(json.dumps(message))
    activity = message.get("voiceActivity")
    if isinstance(activity, dict):
        # On Google's wire the kind is `type` (the SDK's mldev converter reads it into voice_activity_type);
        # the engine sends the model's name as well: both must agree.
        kind = activity.pop("type", None)
        assert kind is not None and activity.get("voiceActivityType", kind) == kind, activity
    model = types.LiveServerMessage.model_validate(message)
    dumped = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert _same(message, dumped), f"not exactly a LiveServerMessage:\n{message}\n{dumped}"
    return model


def test_strict_check_refuses_a_wrong_shape():
    strict({"serverContent": {"turnComplete": True}, "usageMetadata": {"totalTokenCount": 3}})
    for wrong in ({"serverContent": {"turn_complete": True}}, {"serverContent": {"turnComplete": True, "extra": 1}},
                  {"toolCall": {"functionCalls": [{"id": "c", "name": "f", "arguments": "{}"}]}}):
        with pytest.raises(Exception):
            strict(wrong)


class Raw:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> None:
        if "setup" not in message:  # (the SDK's LiveClientSetup lacks realtimeInputConfig, which the wire has)
            types.LiveClientMessage.model_validate(message)  # what we send is a valid client message too
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        strict(message)
        self.received.append(message)
        return message

    async def until(self, key: str, sub: str | None = None, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        got = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.recv(max(0.1, deadline - loop.time()))
            got.append(message)
            if key in message and (sub is None or message[key].get(sub)):
                return got


def _b64(pcm: np.ndarray) -> str:
    return base64.b64encode(pcm.tobytes()).decode()


def test_raw_wire_messages_are_exactly_gemini_shapes(models):
    token = "engine-secret"

    async def scenario(port: int) -> None:
        base = f"ws://127.0.0.1:{port}"
        # Auth: the key as x-goog-api-key, as ?key=, or as a bearer token; nothing else.
        with pytest.raises(InvalidStatus) as refused:
            async with ws_connect(base + GEMINI_LIVE_PATH):
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus):
            async with ws_connect(base + GEMINI_LIVE_PATH, additional_headers={"x-goog-api-key": "wrong"}):
                pass
        async with ws_connect(f"{base}{GEMINI_LIVE_PATHS[1]}?key={token}") as ws:
            # The first message must be setup.
            await ws.send(json.dumps({"realtimeInput": {"text": "hi"}}))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert closed.value.rcvd.code == 1007 and "setup" in closed.value.rcvd.reason
        async with ws_connect(base + GEMINI_LIVE_PATH, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            await ws.send(json.dumps({"setup": {"model": "models/x"}, "clientContent": {}}))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert closed.value.rcvd.code == 1007
        async with ws_connect(base + GEMINI_LIVE_PATH, additional_headers={"x-goog-api-key": token}) as ws:
            peer = Raw(ws)
            await peer.send(setup={
                "model": f"models/{MODEL}",
                "generationConfig": {"responseModalities": ["AUDIO"], "temperature": 0.7},
                "systemInstruction": {"role": "user", "parts": [{"text": "You are a test peer."}]},
                "tools": [{"functionDeclarations": [{"name": "set_timer", "description": "Start a countdown timer",
                                                     "parametersJsonSchema": {"type": "object", "properties": {
                                                         "minutes": {"type": "integer"}}, "required": ["minutes"]}}]}],
                "realtimeInputConfig": {"automaticActivityDetection": {
                    "endOfSpeechSensitivity": "END_SENSITIVITY_HIGH", "silenceDurationMs": 500},
                    "activityHandling": "START_OF_ACTIVITY_INTERRUPTS"},
                "inputAudioTranscription": {}, "outputAudioTranscription": {},
                "sessionResumption": {"transparent": True},
            })
            assert await peer.recv() == {"setupComplete": {}}
            update = await peer.recv()
            assert update["sessionResumptionUpdate"]["resumable"] is True
            # A spoken turn as the deprecated mediaChunks, at 16 kHz; the engine hears and answers it.
            speech = at_16k(spoken("set_timer.wav"))
            for i in range(0, len(speech), 1600):
                await peer.send(realtimeInput={"mediaChunks": [{"mimeType": "audio/pcm;rate=16000", "data": _b64(speech[i:i + 1600])}]})
            got = await peer.until("toolCall")
            call = got[-1]["toolCall"]["functionCalls"][0]
            assert (call["name"], call["args"]) == ("set_timer", {"minutes": 10})
            heard = "".join(m["serverContent"]["inputTranscription"]["text"] for m in peer.received
                            if "inputTranscription" in m.get("serverContent", {}))
            if not heard:
                got = await peer.until("serverContent", "inputTranscription")
                heard = got[-1]["serverContent"]["inputTranscription"]["text"]
            assert set(MANIFEST["set_timer.wav"]["key_words"]) <= words(heard), heard
            await peer.send(toolResponse={"functionResponses": [{"id": call["id"], "name": "set_timer",
                                                                 "response": {"started": True, "minutes": 10}}]})
            got = await peer.until("serverContent", "turnComplete")
            said = "".join(m["serverContent"].get("outputTranscription", {}).get("text", "") for m in got if "serverContent" in m)
            assert "started" in said.lower(), said
            assert got[-1]["usageMetadata"]["totalTokenCount"] > 0
            assert any(m.get("serverContent", {}).get("generationComplete") for m in got)
            update = (await peer.until("sessionResumptionUpdate"))[-1]["sessionResumptionUpdate"]
            assert update["lastConsumedClientMessageIndex"] > 0
            # A video frame goes with the next (typed) turn: the engine reads the picture's size.
            frame = base64.b64encode(_png(64, 32)).decode()
            await peer.send(realtimeInput={"video": {"mimeType": "image/png", "data": frame}})
            await peer.send(realtimeInput={"text": "What do you see?"})
            got = await peer.until("serverContent", "turnComplete")
            said = "".join(m["serverContent"].get("outputTranscription", {}).get("text", "") for m in got if "serverContent" in m)
            assert "64 by 32" in said, said
            # Another rate is resampled too (8 kHz here), and audioStreamEnd ends the turn at once.
            speech = soxr.resample(np.concatenate([silence(300), load_wav("what_time.wav"), silence(100)]), OUT_RATE, 8000).astype("<i2")
            await peer.send(realtimeInput={"audio": {"mimeType": "audio/pcm;rate=8000", "data": _b64(speech)}})
            await peer.send(realtimeInput={"audioStreamEnd": True})
            got = await peer.until("serverContent", "turnComplete")
            said = "".join(m["serverContent"].get("outputTranscription", {}).get("text", "") for m in got if "serverContent" in m)
            assert said.lower().startswith("it is"), said
            # An unsupported audio format closes the connection with 1007 and the reason.
            await peer.send(realtimeInput={"audio": {"mimeType": "audio/ogg", "data": _b64(speech[:100])}})
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await peer.recv()
            assert closed.value.rcvd.code == 1007 and "audio/ogg" in closed.value.rcvd.reason
            assert len(peer.received) > 20

    run_server(models, scenario, token=token)


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 220, 240)).save(out, format="PNG")
    return out.getvalue()


# ----------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize("mime, rate", [("audio/pcm", 16000), ("audio/pcm;rate=24000", 24000),
                                        ("audio/pcm; rate=8000", 8000), ("audio/ogg", None), ("image/png", None)])
def test_pcm_rate(mime, rate):
    assert pcm_rate(mime) == rate


def test_gemini_schema_becomes_json_schema():
    schema = types.Schema(type=types.Type.OBJECT, properties={
        "city_name": types.Schema(type=types.Type.STRING, nullable=True),
        "days": types.Schema(type=types.Type.ARRAY, items=types.Schema(type=types.Type.INTEGER), max_items=3),
    }, required=["city_name"], property_ordering=["city_name", "days"]).model_dump(mode="json", exclude_none=True)
    assert json_schema(schema) == {"type": "object", "required": ["city_name"], "properties": {
        "city_name": {"type": ["string", "null"]}, "days": {"type": "array", "items": {"type": "integer"}, "maxItems": 3}}}


def test_resumption_store_keeps_one_handle_per_session_and_expires():
    now = [0.0]
    store = ResumptionStore(ttl_s=10, max_sessions=2, clock=lambda: now[0])
    a1 = store.put("a", [{"n": 1}])
    a2 = store.put("a", [{"n": 2}])
    assert store.get(a1) is None and store.get(a2).items == [{"n": 2}]
    b = store.put("b", [])
    c = store.put("c", [])
    assert store.get(a2) is None and store.get(b) is not None and store.get(c) is not None  # bounded: oldest out
    now[0] = 11
    assert store.get(b) is None and len(store) == 0
