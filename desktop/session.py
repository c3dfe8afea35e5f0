"""A live conversation: wires the sans-I/O client core to its adapters (socket, engine, microphone, speaker).

`LiveSession` is asyncio code with no Qt: the window subscribes to its notifications and calls its
methods; tests drive it the same way without a window. Audio threads hand their data to the event
loop with `call_soon_threadsafe`; all protocol decisions happen in `RealtimeClient` on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from .audio import FileVoice, MicrophoneCapture, NullOutput, PlaybackBuffer, SpeakerOutput, WavFileSource, probe_devices
from .audio.devices import AudioDeviceError, DeviceStatus
from .audio.near_end import FarEndLevels, NearEndProcessor
from .audio.playback_buffer import StopReport
from .core.actions import (
    Action,
    BargeInHappened,
    DiscardAudio,
    DuckPlayback,
    Notice,
    PausePlayback,
    PlayAudio,
    ResumePlayback,
    Send,
    SpeechBoundary,
    StopPlayback,
    UnduckPlayback,
)
from .core.local_barge_in import LocalBargeInSettings
from .core.pcm import rms_dbfs
from .core.dialects import dialect_for
from .core.pricing import OFFLINE_MODEL
from .core.provider_capabilities import capabilities_for
from .core.realtime_client import RealtimeClient
from .core.session_config import SessionConfig
from .core.turn_taking import TurnSettings
from .providers import ProviderChoice
from .reconnect import ReconnectPolicy
from .session_lifetime import SessionLifetime, SessionTimeLeft, Timing  # noqa: F401  (SessionTimeLeft: the window's)
from .transport.engine_process import EngineProcess, EngineStartError
from .transport.websocket_transport import ConnectError, Endpoint, WebSocketTransport

log = logging.getLogger(__name__)

#: The microphone hands its 10 ms blocks to the capture thread in batches of this much while nothing can be
#: interrupted (one wake-up instead of four; bench/barge_in.py measures the capture path's CPU).
CAPTURE_BATCH_MS = 40
#: ... and of this much once the room has been quiet for 2 s with nothing audible from the speaker
#: (`core.quiet_room`): a block louder than the room ends it. bench/barge_in.py: the idle capture path's CPU.
QUIET_CAPTURE_BATCH_MS = 100
#: While the speaker plays, the capture thread hands the event loop a chunk every this many ms, unless an
#: onset makes it hurry (`NearEndProcessor`: the onset detector itself sees every block at once). 80 ms was
#: measured (bench/results/barge_in.json, 2026-12-08) with 7/60 and 3/60 self-interruptions at -10 / 0 dB,
#: not yet told apart from the quiet-room lever: kept at 40 (the lever off) until a run says which it was.
PLAYING_LOOP_CHUNK_MS = 40


@dataclass(frozen=True)
class ConnectionStatus:
    """What the status bar shows."""

    phase: str  # "starting engine" | "connecting" | "connected" | "reconnecting" | "disconnected" | "failed"
    provider: str
    detail: str = ""
    devices: DeviceStatus | None = None


@dataclass(frozen=True)
class InputLevel:
    dbfs: float


@dataclass(frozen=True)
class VadFrame:
    """The local VAD's speech probability for the input frame ending at `end_ms` (input clock)."""

    probability: float
    end_ms: int


@dataclass(frozen=True)
class FileVoiceState:
    """A sound file spoken as the user's voice (Audio → Speak a sound file) started, or ended."""

    name: str
    duration_ms: int
    speaking: bool
    path: str = ""
    finished: bool = False  # ended because the file was all spoken (not stopped)


@dataclass
class SessionOptions:
    provider: ProviderChoice
    config: SessionConfig = field(default_factory=SessionConfig)
    audio_in: str | None = None  # a WAV file played in as the microphone
    input_device: Any = None
    output_device: Any = None
    use_speaker: bool = True  # False: play into a device-less clock (tests, headless)
    engine_log_level: str = "info"
    local_barge_in: LocalBargeInSettings = field(default_factory=LocalBargeInSettings)
    #: Echo handling on the microphone: "aec" (WebRTC AEC3, falls back to the gate), "gate", or "headset" (none).
    echo_mode: str = "aec"
    turn_settings: TurnSettings | None = None  # None: the config's own turn detection, mode "vad"
    #: The speaker's buffer (PortAudio's suggested latency): shorter stops the voice sooner on a barge-in,
    #: too short underruns on a busy machine.
    output_latency_s: float = 0.04
    #: On a barge-in (hold, pause or stop), cut what the speaker's device has queued instead of letting it
    #: drain: the voice stops ~40 ms sooner, without a fade (see SpeakerOutput.interrupt).
    cut_speaker_buffer: bool = True
    #: The offline engine's brain (local_llm_discovery.BrainChoice; None: the built-in responder).
    engine_brain: Any = None
    #: How long one server session may last, in seconds, instead of the provider's known limit (tests, a
    #: provider whose limit differs); None: the provider's (ProviderCapabilities.session_limit_s).
    session_limit_s: float | None = None


Notification = Any  # Action | ConnectionStatus | InputLevel | Timing


class LiveSession(SessionLifetime):
    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        provider = options.provider
        #: The provider's dialect (desktop.core.dialects): the core's events to its wire messages and back.
        self.dialect = dialect_for(provider.dialect, capabilities_for(provider.kind, provider.dialect),
                                   OFFLINE_MODEL if provider.kind == "engine" else provider.model)
        self.client = RealtimeClient(options.config, local_barge_in=options.local_barge_in,
                                     capabilities=self.dialect.capabilities)
        #: When this connection's server session began (perf_counter), for the provider's session time limit.
        self.session_began: float | None = None
        self._reopen_task: asyncio.Task | None = None
        self._go_away_seen: float | None = None
        self._time_left_shown: int | None = -1
        #: Server sessions replaced before their end (time limit, goAway, settings), without a drop.
        self.renewals = 0
        #: Messages put on the wire (after the dialect), kept like sent_events when record_sent is True.
        self.sent_wire: list[dict[str, Any]] = []
        self.local_vad = None  # SileroSpeechProbability on the microphone, created at start
        self.echo = None  # EchoCanceller | EchoGate | None, on the capture path
        self.far_levels = FarEndLevels()  # what the speaker played lately: the onset detector's double-talk route
        self.near_end: NearEndProcessor | None = None  # the capture thread's processing (echo, onsets, chunks)
        self._deliver_mic: Callable[[np.ndarray], None] = lambda chunk: None
        self._device_trouble: set[str] = set()
        self._last_device_retry = 0.0
        self._device_check_ticks = 0
        #: Wall-clock marks of the barge-in in progress (local onset, pause, stop), for its log line.
        self._barge_in_marks: dict[str, float] = {}
        self._vad_frames = 0
        self._heard_samples = 0
        self._last_position = 0
        self.playback = PlaybackBuffer()
        self.engine: EngineProcess | None = None
        self.brain_fallback = False  # the chosen local model was not answering at start: the responder answers
        self.transport: WebSocketTransport | None = None
        self.devices: DeviceStatus | None = None
        self.status = ConnectionStatus("disconnected", options.provider.label)
        self._listeners: list[Callable[[Notification], None]] = []
        self._source: MicrophoneCapture | WavFileSource | None = None
        self._output: SpeakerOutput | NullOutput | None = None
        self._monitor: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._was_playing = False
        #: When the last spoken turn ended (the server's speech_stopped arrived), until its answer's first audio
        #: is timed against it; None otherwise.
        self._speech_stopped_at: float | None = None
        self.sent_events: list[dict[str, Any]] = []  # kept only when record_sent is True (tests, inspector)
        self.record_sent = False
        #: Called with (item_id, pcm16) for every chunk of assistant audio queued for playback.
        self.output_taps: list[Callable[[str, np.ndarray], None]] = []
        #: Called with ("client", event dict) for every event sent and ("server", message text) for every
        #: message received (the event inspector). Taps must be cheap; a failing tap is logged, not fatal.
        self.event_taps: list[Callable[[str, Any], None]] = []
        self.closed = False
        #: The user muted the microphone (Audio → Mute microphone): silence is sent instead.
        self.muted = False
        #: The conversation's audio being recorded to a WAV file (File → Record audio), or None.
        self.recorder = None
        #: A sound file being spoken as the user's voice in place of the microphone (`speak_file`), or None.
        self.file_voice: FileVoice | None = None
        self.file_voice_error = ""  # why the last file could not be spoken
        self.file_series = None  # file_series.FileSeries: several files, one turn each (`speak_files`)
        self._file_voice_pressed = False  # push-to-talk was pressed for it: released at its end
        #: Simulated background noise mixed into the microphone (`set_noise`, audio.room_noise.RoomNoise), or None.
        self.noise = None
        #: Hands out chunks for a spoken file when no microphone does (none found, or it was lost).
        self._file_clock: WavFileSource | None = None
        #: A new conversation is replacing the connection: its close is not a drop.
        self._starting_over = False
        self.reconnect_policy = ReconnectPolicy()
        self._reconnect_task: asyncio.Task | None = None
        self._dropped_at: float | None = None
        #: Seconds from each unexpected drop to the reconnected session (drop test, reliability figures).
        self.reconnect_seconds: list[float] = []
        self.drops = 0
        from .turn_controller import TurnController

        #: Turn-taking modes (push-to-talk, wake word, client-side semantic turns, dynamic silence rules).
        self.turns = TurnController(self, options.turn_settings)
        if options.turn_settings is not None:
            self.client.requested = self.client.requested.with_turn_detection(self.turns.initial_turn_detection())

    @property
    def speaker_open(self) -> bool:
        """Answers go to a speaker (False: a device-less clock times them; no speaker, or `use_speaker` off)."""
        return isinstance(self._output, SpeakerOutput)

    # ------------------------------------------------------------------ subscription
    def subscribe(self, listener: Callable[[Notification], None]) -> None:
        self._listeners.append(listener)

    def _notify(self, note: Notification) -> None:
        for listener in list(self._listeners):
            try:
                listener(note)
            except Exception:
                log.exception("listener failed on %s", type(note).__name__)

    def _set_status(self, phase: str, detail: str = "") -> None:
        self.status = ConnectionStatus(phase, self.options.provider.label, detail, self.devices)
        self._notify(self.status)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> bool:
        """Start audio, the engine if needed, and connect. False (with a status saying why) on failure."""
        self._loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        self.devices = await self._loop.run_in_executor(
            None, probe_devices, self.options.input_device, self.options.output_device
        )
        if self.options.audio_in and self.devices is not None:
            name = os.path.basename(self.options.audio_in)
            self.devices = replace(
                self.devices,
                input_name=f"file {name}",
                problems=[p for p in self.devices.problems if "microphone" not in p],
            )
        provider = self.options.provider
        url = provider.url
        if provider.kind == "engine":
            self._set_status("starting engine", "starting the offline engine…")
            from .brain_switch import engine_for  # the chosen brain, or the responder when its server is gone

            self.engine = await engine_for(self)
            try:
                await self.engine.start()
            except (EngineStartError, OSError) as exc:
                self._set_status("failed", f"The offline engine could not start: {exc}")
                return False
            url = self._engine_url()
        assert url is not None
        self._set_status("connecting", f"connecting to {provider.label}…")
        try:
            await self._connect(url)
        except ConnectError as exc:
            self._set_status("failed", str(exc))
            return False
        self._notify(Timing("connect", time.perf_counter() - t0))
        self._apply(self.client.on_connected())
        self._set_status("connected")
        self._apply(self.client.flush_outbox())  # anything typed while the engine was starting
        try:
            from .audio.silero_vad import SileroSpeechProbability

            self.local_vad = SileroSpeechProbability()
        except Exception as exc:  # the app works without it; barge-in then waits for the server
            log.warning("local VAD unavailable: %s", exc)
            self._notify(Notice("warning", f"Local voice detection is unavailable ({exc}); interruptions wait for the server."))
        self._start_output()
        self._start_input()
        self._monitor = asyncio.create_task(self._watch_playback())
        return True

    async def _connect(self, url: str) -> None:
        """Open a new socket (one `WebSocketTransport` per connection); raises ConnectError."""
        provider = self.options.provider
        transport = WebSocketTransport(Endpoint(url, provider.label, provider.api_key, auth=provider.auth),
                                       self._on_message, self._on_closed)
        await transport.connect()
        self.transport = transport
        self.dialect.connected()
        self.session_began = time.perf_counter()

    async def stop(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stop_recording()
        if self.file_series is not None:
            self.file_series.stop()
        self._stop_file_clock()
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        if self._source is not None:
            self._source.stop()
        if self._output is not None:
            self._output.stop()
        if self._monitor is not None:
            self._monitor.cancel()
        if self.transport is not None:
            await self.transport.close()
        if self.engine is not None:
            await self.engine.stop()

    # ------------------------------------------------------------------ audio
    def _start_input(self) -> None:
        loop = self._loop
        assert loop is not None

        def to_loop(handler: Callable[..., None]) -> Callable[..., None]:
            def call(*args: Any) -> None:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(handler, *args)
            return call

        # Echo cancellation, the loudness-onset detector and batching run on the capture thread, off the
        # UI/event-loop thread; the loop gets 40 ms chunks (20 ms around an onset) and, at once, onsets.
        near_end = NearEndProcessor(to_loop(self._on_input_chunk), to_loop(self._on_onset),
                                    onset=self.options.local_barge_in.onset, batch_ms=CAPTURE_BATCH_MS,
                                    quiet_batch_ms=QUIET_CAPTURE_BATCH_MS,
                                    playing_chunk_ms=PLAYING_LOOP_CHUNK_MS)
        near_end.far_levels = self.far_levels
        self.near_end = near_end

        end_margin = 480  # 20 ms past a file's end: its last samples have left near_end's batching

        def deliver(chunk: np.ndarray) -> None:
            # The capture thread (or the file clock). A sound file speaking for the user takes the microphone's
            # place here, before onsets and levels are taken, so it interrupts an answer as a voice would.
            near_end.echo = self.echo
            voice, noise = self.file_voice, self.noise
            if voice is None:
                near_end.process(chunk if noise is None else noise.mix(chunk))
                return
            substitute = voice.take(len(chunk))
            near_end.process(chunk, substitute if noise is None else noise.mix(substitute))
            if voice.position >= len(voice.audio) + end_margin and not voice.end_reported:
                voice.end_reported = True
                if not loop.is_closed():
                    loop.call_soon_threadsafe(self._file_voice_spoken, voice)

        self._deliver_mic = deliver
        if self.options.audio_in:
            try:
                self._source = WavFileSource(self.options.audio_in, deliver)
            except (OSError, ValueError) as exc:
                self._notify(Notice("error", f"Cannot play {self.options.audio_in} as input: {exc}"))
                return
            self._source.start()
            self._notify(Notice("info", f"Playing {self.options.audio_in} into the conversation as the microphone."))
            return
        if self.devices is None or self.devices.input_name is None:
            self._notify(Notice("warning", "No microphone found: you can type, and Parley will listen once a microphone is connected."))
            return
        self._start_echo_handling()
        self._open_microphone()

    def _open_microphone(self) -> bool:
        try:
            source = MicrophoneCapture(self._deliver_mic, device=self.options.input_device, chunk_ms=10,
                                       batch_ms=CAPTURE_BATCH_MS, wait_ms=self._capture_wait_ms)
            source.start()
        except (AudioDeviceError, OSError) as exc:
            self._source = None
            self._notify(Notice("warning", f"The microphone could not be opened: {exc}"))
            return False
        self._stop_file_clock()  # the microphone paces a spoken file from now on (one thread feeds near_end)
        self._source = source
        return True

    def _capture_wait_ms(self, raw_dbfs: float) -> int:
        """From the PortAudio callback, per 10 ms block: how long it may wait for its batch (0: go now).

        0 while push-to-talk is held (the release commits what has arrived) or a sound file speaks for the
        user; otherwise the near end decides (`NearEndProcessor.block_wait_ms`): at once for a block that may
        start an onset that would hold playback, longer batches in a quiet room, 40 ms otherwise."""
        near_end = self.near_end
        if near_end is None:
            return 0
        wait = near_end.block_wait_ms(raw_dbfs)  # every block, so that it keeps learning the room
        hurry = self.file_voice is not None or self.turns.ptt.held
        near_end.hurry = hurry  # set before this block reaches the near end (it goes after this answer)
        return 0 if hurry else wait

    # ------------------------------------------------------------------ devices
    def set_input_device(self, device: Any) -> None:
        """Switch the microphone (None: the system default) without dropping the conversation."""
        self.options.input_device = device
        if self.options.audio_in or self._loop is None or self.closed:
            return
        if self._source is not None:
            self._source.stop()
            self._source = None
        if self.echo is None and self.options.echo_mode != "headset":
            self._start_echo_handling()
        self._forget_echo_coupling()
        if self._open_microphone():
            self._device_trouble.discard("input")
            self._notify(Notice("info", f"Microphone: {getattr(self._source, 'device_name', None) or 'system default'}."))
        self._refresh_device_status()

    def set_output_device(self, device: Any) -> None:
        """Switch the speaker (None: the system default); queued answer audio carries on there."""
        self.options.output_device = device
        if self._loop is None or self.closed:
            return
        if self._output is not None:
            self._output.stop()
            self._output = None
        self._forget_echo_coupling()
        self._start_output()
        self._device_trouble.discard("output")
        self._refresh_device_status()

    def _forget_echo_coupling(self) -> None:
        # Another speaker or microphone: the onset detector learns again how loud the echo comes back (a
        # deque clear, safe against the capture thread's appends).
        if self.near_end is not None:
            self.near_end.onset_detector.forget_echo_coupling()
            self.near_end.quiet_room.forget()  # and how quiet its room is

    def set_echo_mode(self, mode: str) -> None:
        """"aec", "gate" or "headset"; applies to the microphone at once."""
        self.options.echo_mode = mode
        if self._loop is None or self.closed or self.options.audio_in:
            return
        self._start_echo_handling()

    def set_local_barge_in(self, enabled: bool) -> None:
        self._configure_local_barge_in(enabled=enabled)

    def set_hold_on_onset(self, enabled: bool) -> None:
        """Pause playback at a sudden loudness onset, before the VAD confirms (see core/speech_onset)."""
        self._configure_local_barge_in(energy_onset=enabled)

    def _configure_local_barge_in(self, **changes: Any) -> None:
        settings = replace(self.client.local_barge_in.settings, **changes)
        self.options.local_barge_in = settings
        self._apply(self.client._local(self.client.local_barge_in.configure(settings)))

    def _refresh_device_status(self) -> None:
        if self.devices is None:
            return
        inp = getattr(self._source, "device_name", None) if isinstance(self._source, MicrophoneCapture) else self.devices.input_name
        out = getattr(self._output, "device_name", None) if isinstance(self._output, SpeakerOutput) else None
        problems = []
        if "input" in self._device_trouble or (inp is None and not self.options.audio_in):
            problems.append("microphone lost" if "input" in self._device_trouble else "no microphone found")
        if "output" in self._device_trouble or out is None:
            problems.append("speaker lost" if "output" in self._device_trouble else "no speaker found")
        self.devices = replace(self.devices, input_name=inp if "input" not in self._device_trouble else None,
                               output_name=out if "output" not in self._device_trouble else None, problems=problems)
        self._set_status(self.status.phase, self.status.detail)

    def _check_devices(self) -> None:
        """A device that stopped (unplugged) is reported once; Parley keeps going and tries to reopen it."""
        now = time.monotonic()
        source = self._source
        if isinstance(source, MicrophoneCapture) and source.error and "input" not in self._device_trouble:
            self._device_trouble.add("input")
            self._last_device_retry = now
            self._notify(Notice("warning", f"The microphone stopped ({source.error}). Parley keeps running: type, "
                                "or pick another microphone in the Audio menu; it will reconnect by itself."))
            source.stop()
            self._source = None
            self._refresh_device_status()
        output = self._output
        if isinstance(output, SpeakerOutput) and output.error and "output" not in self._device_trouble:
            self._device_trouble.add("output")
            self._last_device_retry = now
            self._notify(Notice("warning", f"The speaker stopped ({output.error}). Answers keep coming as text; "
                                "pick another speaker in the Audio menu, or Parley reopens it when it is back."))
            output.stop()
            self._output = NullOutput(self.playback)
            self._output.start()
            self._refresh_device_status()
        if self._device_trouble and now - self._last_device_retry > 3.0:
            self._last_device_retry = now
            if "input" in self._device_trouble and self._open_microphone():
                self._device_trouble.discard("input")
                self._notify(Notice("info", "The microphone is back."))
                self._refresh_device_status()
            if "output" in self._device_trouble:
                try:
                    speaker = SpeakerOutput(self.playback, device=self.options.output_device, latency=self.options.output_latency_s)
                    speaker.start()
                except (AudioDeviceError, OSError):
                    pass  # still gone: try again in a few seconds
                else:
                    if self._output is not None:
                        self._output.stop()
                    self._output = speaker
                    self._device_trouble.discard("output")
                    self._notify(Notice("info", "The speaker is back."))
                    self._refresh_device_status()

    def _start_echo_handling(self) -> None:
        from .audio.echo_canceller import EchoGate, make_echo_canceller
        from .core.pcm import float_to_pcm16

        mode = self.options.echo_mode
        try:
            self.echo = make_echo_canceller(mode)
        except ValueError as exc:
            self._notify(Notice("warning", str(exc)))
            self.echo = None
        echo = self.echo
        if echo is None:
            self.playback.far_end_tap = None
            self.playback.underflow_tap = None
            self._notify(Notice("info", "Headset mode: no echo cancellation."))
            return
        far_levels = self.far_levels

        def far_end_tap(block: np.ndarray) -> None:
            echo.feed_far_end(float_to_pcm16(block))
            far_levels.feed(block)

        self.playback.far_end_tap = far_end_tap

        loop = self._loop

        def on_underflow() -> None:
            # The speaker inserted silence the canceller's reference never saw, so the echo arrives shifted
            # within a few ms: gate again at once, from the audio callback, while the canceller re-aligns;
            # and the local barge-in does not take the echo's return for the user (LocalBargeIn.on_speaker_underrun).
            if self.playback.is_playing() or self.playback.is_paused():
                self._rearm_echo_gate()
                if loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(self._on_speaker_underrun)

        self.playback.underflow_tap = on_underflow
        if isinstance(echo, EchoGate):
            self._notify(Notice("warning", "Echo cancellation is unavailable: using an echo gate "
                                "(speak clearly louder than the assistant to interrupt it)."))
        else:
            log.info("echo cancellation: %s", getattr(echo, "name", type(echo).__name__))

    def _start_output(self) -> None:
        has_speaker = self.devices is not None and (self.devices.output_name is not None or self.options.output_device is not None)
        if self.options.use_speaker and has_speaker:
            try:
                speaker = SpeakerOutput(self.playback, device=self.options.output_device, latency=self.options.output_latency_s)
                speaker.start()
                self._output = speaker
                return
            except (AudioDeviceError, OSError) as exc:
                self._notify(Notice("warning", f"The speaker could not be opened ({exc}); answers are shown but not heard."))
        elif self.options.use_speaker:
            self._notify(Notice("warning", "No speaker found: answers are shown but not heard."))
        self._output = NullOutput(self.playback)
        self._output.start()

    def _on_speaker_underrun(self) -> None:
        if not self.closed:
            self._apply(self.client.speaker_underrun())

    def _on_onset(self, at_ms: int) -> None:
        if not self.closed:
            self._apply(self.client.local_onset(at_ms))

    def _on_input_chunk(self, chunk: np.ndarray, echo_removed_db: float | None = None) -> None:
        if self.closed:
            return
        if self.muted and self.file_voice is None:  # a file speaks even into a muted microphone
            # Silence, not nothing: the server's audio clock keeps pace with ours (truncation and VAD times
            # stay aligned), and neither the local VAD nor the server hears the room.
            chunk = np.zeros_like(chunk)
        recorder = self.recorder
        if recorder is not None:
            try:
                recorder.add_input(chunk)
            except OSError as exc:  # a full disk: stop recording, keep the conversation
                self._recording_failed(exc)
        self._notify(InputLevel(rms_dbfs(chunk)))
        if self.local_vad is not None:
            for probability in self.local_vad.process(chunk):
                self._vad_frames += 1
                end_ms = int(self._vad_frames * self.local_vad.frame_ms)
                self._notify(VadFrame(probability, end_ms))
                # The frame's newest 20 ms are this chunk: how much the canceller removed tells echo from voice.
                self._apply(self.client.local_vad_frame(probability, end_ms, echo_removed_db))
                self._apply(self.turns.on_vad_frame(probability, end_ms))
        gain = self.client.uplink_gain(echo_cancelled=self.echo is not None)
        if gain < 1.0:  # only echo residue while the assistant speaks: keep it from the server's VAD
            chunk = (chunk.astype(np.float32) * np.float32(gain)).astype(np.int16)
        self._apply(self.turns.on_input_audio(chunk))  # the mode decides what reaches the server

    def _file_voice_spoken(self, voice: FileVoice) -> None:
        """The capture thread handed out all of `voice` (and its last chunk has reached the loop before this)."""
        if voice is self.file_voice and not self.closed:
            self._end_file_voice(finished=True)

    # ------------------------------------------------------------------ a sound file as the user's voice
    def speak_file(self, path: str | os.PathLike) -> bool:
        """Speak a sound file into the conversation as the user's voice, in real time, in place of the microphone.

        It takes the microphone's place on the capture thread (see `_start_input`), so it goes where a voice
        goes: the loudness onset and the local VAD (so it interrupts an answer as a voice would), the recorder,
        and the turn mode (server VAD ends the turn after it; push-to-talk is held for its length and released
        after it). A file started while another speaks replaces it. False, with a notice saying why, for a file
        that cannot be spoken (missing, not audio, silent, too long).
        """
        if self._loop is None or self.closed:
            self._notify(Notice("warning", "Not connected yet: the file can be spoken once the conversation has started."))
            return False
        try:
            voice = FileVoice.open(path)
        except ValueError as exc:
            self.file_voice_error = str(exc)
            self._notify(Notice("error", f"Cannot speak that file: {exc}"))
            return False
        pressed = self._file_voice_pressed  # the key held for a file this one replaces stays held for this one
        if self.file_voice is not None:
            self._end_file_voice(finished=False)
        self.file_voice = voice
        if self.turns.settings.mode == "push_to_talk" and not self.turns.ptt.held:
            self.turns.press()
            pressed = True
        self._file_voice_pressed = pressed
        if not self._microphone_delivers():
            # Nothing hands out chunks to swap: the file keeps time itself, and 1.5 s of silence after it lets
            # turn detection see the end.
            self._stop_file_clock()
            self._file_clock = WavFileSource(voice.name, self._deliver_mic, chunk_ms=10,
                                             trailing_silence_s=voice.duration_ms / 1000 + 1.5,
                                             audio=np.zeros(0, dtype=np.int16))
            self._file_clock.start()
        self.client.sent_audio.source_started(voice.name)
        log.info("speaking %s (%d ms) as the user's voice", voice.name, voice.duration_ms)
        self._notify(FileVoiceState(voice.name, voice.duration_ms, True, voice.path))
        return True

    def keep_turn(self, folder: str | os.PathLike, item_id: str | None = None) -> tuple[str, int] | None:
        """Write the newest spoken turn (or the turn `item_id`), exactly as the model heard it, to a WAV file in
        `folder`, to speak it again later; (path, duration in ms), or None with a notice saying why."""
        from datetime import datetime

        from .audio.file_source import write_wav_24k

        tape = self.client.sent_audio
        if item_id is None:
            found = tape.last_turn()
            if found is None:
                self._notify(Notice("warning", "No spoken turn to keep yet: speak first (turns older than a minute "
                                               "are not kept)."))
                return None
            item_id, audio = found
        else:
            audio = tape.audio(item_id)
            if audio is None:
                self._notify(Notice("warning", "That turn's audio is no longer kept (only the last minute is)."))
                return None
        stamp = f"{datetime.now():%Y-%m-%d %H-%M-%S}"
        path = os.path.join(os.fspath(folder), f"turn {stamp}.wav")
        n = 2
        while os.path.exists(path):  # two turns kept within a second
            path = os.path.join(os.fspath(folder), f"turn {stamp} ({n}).wav")
            n += 1
        try:
            os.makedirs(folder, exist_ok=True)
            write_wav_24k(path, audio)
        except OSError as exc:
            self._notify(Notice("error", f"Could not keep the turn in {folder}: {exc.strerror or exc}"))
            return None
        duration_ms = len(audio) * 1000 // 24000
        log.info("kept turn %s (%d ms) as %s", item_id, duration_ms, path)
        return path, duration_ms

    def set_noise(self, kind: str | None, level_dbfs: float = -35.0, path: str | None = None) -> bool:
        """Mix simulated background noise into the microphone (None: off); False, with a notice, when it cannot
        be (a noise file that cannot be read)."""
        from .audio.room_noise import RoomNoise

        if kind is None:
            self.noise = None
            log.info("background noise off")
            return True
        try:
            self.noise = RoomNoise(kind, level_dbfs, path)
        except ValueError as exc:
            self._notify(Notice("error", f"Cannot use that noise: {exc}"))
            return False
        log.info("background noise: %s", self.noise.describe())
        return True

    def speak_files(self, paths: list[str], report_folder: str | os.PathLike, interrupt_after_s: float | None = None):
        """Speak the files one turn at a time, each after the previous one's answer (or `interrupt_after_s` into
        its playback, to cut it off); a report at the end (`file_series.FileSeries`). Replaces a series already
        running."""
        from .file_series import FileSeries

        if self.file_series is not None and self.file_series.running:
            self.file_series.stop()
        series = FileSeries(self, paths, report_folder, interrupt_after_s=interrupt_after_s)
        self.file_series = series
        series.start()
        return series

    def stop_speaking_file(self) -> None:
        """Stop a spoken file where it is, and a series of them (Esc also discards what the file said:
        `TurnController.cancel`)."""
        if self.file_series is not None:
            self.file_series.stop()
        if self.file_voice is not None:
            self._end_file_voice(finished=False)

    def _end_file_voice(self, finished: bool) -> None:
        voice, self.file_voice = self.file_voice, None
        if voice is None:
            return
        self.client.sent_audio.source_ended()
        if self._file_voice_pressed:
            self._file_voice_pressed = False
            if finished:
                self.turns.release()  # commit the turn and ask for the answer, as a released key would
        if not finished:
            self._stop_file_clock()  # a finished file's clock runs on through its trailing silence
        log.info("%s %s at %d ms", "spoke" if finished else "stopped", voice.name, voice.position_ms)
        self._notify(FileVoiceState(voice.name, voice.duration_ms, False, voice.path, finished))

    def _microphone_delivers(self) -> bool:
        source = self._source
        return source is not None and source.running

    def _stop_file_clock(self) -> None:
        clock, self._file_clock = self._file_clock, None
        if clock is not None:
            clock.stop()

    async def _watch_playback(self) -> None:
        """Tell the core when assistant audio becomes audible and when it has all been played."""
        while True:
            await asyncio.sleep(0.02)
            position = self.playback.position_samples
            # Paused playback still holds the answer: the assistant has the floor until it is resolved.
            playing = self.playback.is_playing() or self.playback.is_paused()
            if playing and not self.playback.is_paused():
                self._heard_samples += position - self._last_position
                self.client.assistant_heard(self._heard_samples * 1000 // 24000)
            self._last_position = position
            self._apply(self.client.tick())
            self._device_check_ticks += 1
            if self._device_check_ticks % 10 == 0:  # every ~200 ms
                self._check_devices()
                self._check_session_lifetime()
            if playing and not self._was_playing:
                item = self.playback.current_item()
                if item is None:
                    continue  # queued but nothing handed to the device yet
                self._apply(self.client.playback_started(item))
            elif not playing and self._was_playing:
                self._apply(self.client.playback_finished())
            self._was_playing = playing

    # ------------------------------------------------------------------ protocol
    def _on_message(self, text: str) -> None:
        if self.event_taps:
            self._tap("server", text)
        try:
            translation = self.dialect.inbound(text)
        except Exception as exc:  # a dialect bug must not take the conversation down
            log.exception("the %s dialect failed on a message", self.options.provider.dialect)
            self._notify(Notice("warning", f"Skipped a server message Parley could not read ({type(exc).__name__})."))
            return
        self._translated(translation)
        for event in translation.events:
            self._apply(self.client.receive_event(event))

    def _translated(self, translation) -> None:
        """What a dialect produced besides core events: wire messages to send, notices to show."""
        for message in translation.wire:
            self._put_on_wire(message)
        for level, text in translation.notices:
            self._notify(Notice(level, text))

    def _put_on_wire(self, message: dict[str, Any]) -> None:
        if self.record_sent:
            self.sent_wire.append(message)
        if self.event_taps:
            self._tap("client", message)
        if self.transport is None or not self.transport.send(message):
            log.debug("not connected: dropped %s", message.get("type") or next(iter(message), "?"))

    def _tap(self, direction: str, payload: Any) -> None:
        for tap in list(self.event_taps):
            try:
                tap(direction, payload)
            except Exception:
                log.exception("event tap failed")

    # ------------------------------------------------------------------ recording
    def start_recording(self, path: str) -> None:
        """Record both sides to a stereo WAV (see ConversationRecorder). Raises OSError if it cannot be written."""
        from .audio.conversation_recorder import ConversationRecorder

        self.stop_recording()
        self.recorder = ConversationRecorder(path)
        self.playback.record_tap = self.recorder.add_played
        log.info("recording the conversation's audio to %s", path)

    def stop_recording(self) -> float | None:
        """Finish the recording; its length in seconds (None when none was running)."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        self.playback.record_tap = None
        try:
            seconds = recorder.close()
        except OSError as exc:
            self._notify(Notice("error", f"The recording {recorder.path} could not be finished: {exc}"))
            return None
        log.info("recorded %.1f s to %s", seconds, recorder.path)
        return seconds

    def _recording_failed(self, exc: OSError) -> None:
        recorder, self.recorder = self.recorder, None
        self.playback.record_tap = None
        if recorder is not None:
            try:
                recorder.close()
            except OSError as close_exc:  # the notice below says what was kept
                log.warning("finishing the recording %s failed too: %s", recorder.path, close_exc)
            self._notify(Notice("error", f"Recording stopped: {exc}. {recorder.seconds:.0f} s were saved to "
                                         f"{recorder.path}; the conversation goes on."))

    def restore_items(self, items: list) -> int:
        """Bring back a saved conversation: shown in the transcript and, when connected, re-seeded as context."""
        from .core.actions import ItemChanged

        conversation = self.client.conversation
        new = [i for i in items if i.item_id not in conversation]
        conversation.restore(new)
        for item in new:
            self._notify(ItemChanged(item.item_id))
        self._apply(self.client.reseed_context())
        return len(new)

    def _silence_playback(self, act: Callable[..., StopReport]) -> StopReport:
        """Pause or stop the answer; with a speaker, also cut what its device has queued (unless turned off)."""
        output = self._output
        if self.options.cut_speaker_buffer and isinstance(output, SpeakerOutput):
            report, cut = output.interrupt(lambda fade_ms: act(fade_ms=fade_ms))
            if cut:
                self._barge_in_marks.setdefault("onset", time.perf_counter())
                self._barge_in_marks["speaker_cut"] = time.perf_counter()
                # The restarted stream may run at a slightly different delay, and the canceller's reference
                # held audio that never played: gate the echo again while it re-aligns (as after an underrun),
                # but only against what plays from now on. Nothing plays while the answer is paused or after
                # it stopped, so the user's voice passes; if the answer resumes, its first second is gated.
                self._rearm_echo_gate(forget_played=True)
            return report
        return act()

    def _rearm_echo_gate(self, forget_played: bool = False) -> None:
        """Gate the echo canceller's output again for 1 s of playback (see ConvergingEchoCanceller.rearm); a no-op
        for the plain gate."""
        rearm = getattr(self.echo, "rearm", None)
        if rearm is not None:
            rearm(1000, forget_played=forget_played)

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                if self.record_sent:
                    self.sent_events.append(action.event)
                try:
                    translation = self.dialect.outbound(action.event)
                except Exception as exc:
                    log.exception("the %s dialect failed on %s", self.options.provider.dialect, action.event.get("type"))
                    self._notify(Notice("warning", f"Could not send {action.event.get('type')} ({type(exc).__name__})."))
                    continue
                self._translated(translation)
                for event in translation.events:  # what the provider will not say, said by its dialect
                    self._apply(self.client.receive_event(event))
                continue
            if isinstance(action, PlayAudio):
                if self._speech_stopped_at is not None:
                    waited = time.perf_counter() - self._speech_stopped_at
                    self._speech_stopped_at = None
                    self._notify(Timing("speech_end_to_first_audio", waited))
                    self._apply(self.client.reply_latency(action.item_id, round(waited * 1000)))
                self.playback.enqueue(action.item_id, action.pcm16)
                for tap in self.output_taps:
                    tap(action.item_id, action.pcm16)
                continue
            if isinstance(action, DuckPlayback):
                self.playback.duck(action.gain)
                self._barge_in_marks = {"onset": time.perf_counter()}
                continue
            if isinstance(action, UnduckPlayback):
                self.playback.unduck()
                continue
            if isinstance(action, PausePlayback):
                report = self._silence_playback(self.playback.pause)
                self._barge_in_marks.setdefault("onset", time.perf_counter())
                self._barge_in_marks["held" if action.tentative else "paused"] = time.perf_counter()
                log.info("playback %s: %s heard %d ms", f"held ({action.cause or 'a sudden sound'})" if action.tentative
                         else "paused (possible interruption)", report.item_id, report.played_ms)
                continue
            if isinstance(action, ResumePlayback):
                self.playback.unduck()
                self.playback.resume()
                if action.tentative:
                    self._barge_in_marks = {}
                log.info("%s: playback resumed", "not speech" if action.tentative else "false interruption")
                continue
            if isinstance(action, StopPlayback):
                report = self._silence_playback(self.playback.stop)
                self._barge_in_marks.setdefault("onset", time.perf_counter())
                self._barge_in_marks["stopped"] = time.perf_counter()
                self.playback.unduck()
                log.info("playback stopped (%s): %s heard %d ms", action.reason, report.item_id, report.played_ms)
                self._was_playing = False
                self._apply(self.client.playback_stopped(report.item_id, report.played_ms))
                continue
            if isinstance(action, DiscardAudio):
                self.playback.discard_item(action.item_id)
                continue
            if isinstance(action, BargeInHappened):
                marks, self._barge_in_marks = self._barge_in_marks, {}
                onset = marks.get("onset")
                steps = ", ".join(f"{k} +{(v - onset) * 1000:.0f} ms" for k, v in marks.items() if k != "onset" and onset)
                log.info("barge-in: %s heard %d of %d ms (%s)", action.item_id, action.heard_ms, action.received_ms,
                         steps or "server VAD")
            if isinstance(action, SpeechBoundary) and not action.started:
                self._speech_stopped_at = time.perf_counter()
            self._notify(action)

    # ------------------------------------------------------------------ user intent
    def send_text(self, text: str) -> bool:
        """Send a typed message (or keep it for the reconnect); False if it was refused."""
        self._speech_stopped_at = None  # its answer's latency is not measured from an earlier spoken turn
        waiting = len(self.client.outbox)
        self._apply(self.client.send_text(text))
        return self.client.connected or len(self.client.outbox) > waiting

    def send_content(self, content: list[dict[str, Any]], images=None) -> bool:
        self._speech_stopped_at = None  # as in send_text
        waiting = len(self.client.outbox)
        self._apply(self.client.send_user_content(content, images))
        return self.client.connected or len(self.client.outbox) > waiting

    def send_tool_output(self, call_id: str, output: str, delay_s: float = 0.0) -> None:
        """Answer the model's tool call `call_id` (after `delay_s`, as a slow backend would); the model then
        speaks with the result. A call no longer in the conversation by then (a new one started) is not answered."""
        if delay_s > 0 and self._loop is not None and not self.closed:
            log.info("tool call %s: answering in %.1f s", call_id, delay_s)
            self._loop.call_later(delay_s, self._send_tool_output_now, call_id, output)
            return
        self._send_tool_output_now(call_id, output)

    def _send_tool_output_now(self, call_id: str, output: str) -> None:
        if self.closed:
            return
        if not any(item.call_id == call_id for item in self.client.conversation):
            log.info("tool call %s is no longer in the conversation: its result is not sent", call_id)
            return
        self._speech_stopped_at = None  # the answer is timed from no spoken turn
        self._apply(self.client.send_tool_output(call_id, output))

    def commit_turn(self) -> None:
        self._apply(self.client.commit_turn())

    def clear_input(self) -> None:
        self._apply(self.client.clear_input())

    def cancel_response(self) -> None:
        self._apply(self.client.cancel_response())

    def answer_again(self) -> None:
        """Replace the last answer with a new one (see RealtimeClient.answer_again)."""
        self._speech_stopped_at = None  # the new answer is timed from no spoken turn
        self._apply(self.client.answer_again())

    def delete_item(self, item_id: str) -> None:
        """Take one item out of the conversation: the model forgets it (the transcript's Delete)."""
        self._apply(self.client.delete_item(item_id))

    def update_config(self, config: SessionConfig) -> None:
        self._apply(self.client.update_session(config))
