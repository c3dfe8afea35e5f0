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

from .audio import MicrophoneCapture, NullOutput, PlaybackBuffer, SpeakerOutput, WavFileSource, probe_devices
from .audio.devices import AudioDeviceError, DeviceStatus
from .core.actions import (
    Action,
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
from .core.realtime_client import RealtimeClient
from .core.session_config import SessionConfig
from .providers import ProviderChoice
from .transport.engine_process import EngineProcess, EngineStartError
from .transport.websocket_transport import ConnectError, Endpoint, WebSocketTransport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionStatus:
    """What the status bar shows."""

    phase: str  # "starting engine" | "connecting" | "connected" | "disconnected" | "failed"
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
class Timing:
    """Latency figures the log and benchmarks read: name -> seconds."""

    name: str
    seconds: float


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


Notification = Any  # Action | ConnectionStatus | InputLevel | Timing


class LiveSession:
    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self.client = RealtimeClient(options.config, local_barge_in=options.local_barge_in)
        self.local_vad = None  # SileroSpeechProbability on the microphone, created at start
        self._vad_frames = 0
        self._heard_samples = 0
        self._last_position = 0
        self.playback = PlaybackBuffer()
        self.engine: EngineProcess | None = None
        self.transport: WebSocketTransport | None = None
        self.devices: DeviceStatus | None = None
        self.status = ConnectionStatus("disconnected", options.provider.label)
        self._listeners: list[Callable[[Notification], None]] = []
        self._source: MicrophoneCapture | WavFileSource | None = None
        self._output: SpeakerOutput | NullOutput | None = None
        self._monitor: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._was_playing = False
        self._speech_stopped_at: float | None = None
        self._first_audio_pending = False
        self.sent_events: list[dict[str, Any]] = []  # kept only when record_sent is True (tests, inspector)
        self.record_sent = False
        #: Called with (item_id, pcm16) for every chunk of assistant audio queued for playback.
        self.output_taps: list[Callable[[str, np.ndarray], None]] = []
        self.closed = False

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
            self.engine = EngineProcess(self.options.engine_log_level)
            try:
                await self.engine.start()
            except (EngineStartError, OSError) as exc:
                self._set_status("failed", f"The offline engine could not start: {exc}")
                return False
            url = self.engine.url
        assert url is not None
        self._set_status("connecting", f"connecting to {provider.label}…")
        self.transport = WebSocketTransport(
            Endpoint(url, provider.label, provider.api_key), self._on_message, self._on_closed
        )
        try:
            await self.transport.connect()
        except ConnectError as exc:
            self._set_status("failed", str(exc))
            return False
        self._notify(Timing("connect", time.perf_counter() - t0))
        self._apply(self.client.on_connected())
        self._set_status("connected")
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

    async def stop(self) -> None:
        if self.closed:
            return
        self.closed = True
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

        def deliver(chunk: np.ndarray) -> None:
            loop.call_soon_threadsafe(self._on_input_chunk, chunk)

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
        try:
            self._source = MicrophoneCapture(deliver, device=self.options.input_device)
            self._source.start()
        except (AudioDeviceError, OSError) as exc:
            self._source = None
            self._notify(Notice("warning", f"The microphone could not be opened: {exc}"))

    def _start_output(self) -> None:
        if self.options.use_speaker and self.devices is not None and self.devices.output_name is not None:
            try:
                self._output = SpeakerOutput(self.playback, device=self.options.output_device)
                self._output.start()
                return
            except (AudioDeviceError, OSError) as exc:
                self._notify(Notice("warning", f"The speaker could not be opened ({exc}); answers are shown but not heard."))
        elif self.options.use_speaker:
            self._notify(Notice("warning", "No speaker found: answers are shown but not heard."))
        self._output = NullOutput(self.playback)
        self._output.start()

    def _on_input_chunk(self, chunk: np.ndarray) -> None:
        if self.closed:
            return
        self._notify(InputLevel(rms_dbfs(chunk)))
        if self.local_vad is not None:
            for probability in self.local_vad.process(chunk):
                self._vad_frames += 1
                end_ms = int(self._vad_frames * self.local_vad.frame_ms)
                self._notify(VadFrame(probability, end_ms))
                self._apply(self.client.local_vad_frame(probability, end_ms))
        self._apply(self.client.append_audio(chunk))

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
        actions = self.client.receive(text)
        self._apply(actions)

    def _on_closed(self, reason: str) -> None:
        if self.closed:
            return
        self._apply(self.client.on_disconnected())
        self._set_status("disconnected", f"Connection {reason}.")

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                if self.record_sent:
                    self.sent_events.append(action.event)
                if self.transport is None or not self.transport.send(action.event):
                    log.debug("not connected: dropped %s", action.event.get("type"))
                continue
            if isinstance(action, PlayAudio):
                if self._first_audio_pending and self._speech_stopped_at is not None:
                    self._first_audio_pending = False
                    self._notify(Timing("speech_end_to_first_audio", time.perf_counter() - self._speech_stopped_at))
                self.playback.enqueue(action.item_id, action.pcm16)
                for tap in self.output_taps:
                    tap(action.item_id, action.pcm16)
                continue
            if isinstance(action, DuckPlayback):
                self.playback.duck(action.gain)
                continue
            if isinstance(action, UnduckPlayback):
                self.playback.unduck()
                continue
            if isinstance(action, PausePlayback):
                report = self.playback.pause()
                log.info("playback paused (possible interruption): %s heard %d ms", report.item_id, report.played_ms)
                continue
            if isinstance(action, ResumePlayback):
                self.playback.unduck()
                self.playback.resume()
                log.info("false interruption: playback resumed")
                continue
            if isinstance(action, StopPlayback):
                report = self.playback.stop()
                self.playback.unduck()
                log.info("playback stopped (%s): %s heard %d ms", action.reason, report.item_id, report.played_ms)
                self._was_playing = False
                self._apply(self.client.playback_stopped(report.item_id, report.played_ms))
                continue
            if isinstance(action, DiscardAudio):
                self.playback.discard_item(action.item_id)
                continue
            if isinstance(action, SpeechBoundary) and not action.started:
                self._speech_stopped_at = time.perf_counter()
                self._first_audio_pending = True
            self._notify(action)

    # ------------------------------------------------------------------ user intent
    def send_text(self, text: str) -> None:
        self._apply(self.client.send_text(text))

    def send_content(self, content: list[dict[str, Any]], images=None) -> None:
        self._apply(self.client.send_user_content(content, images))

    def commit_turn(self) -> None:
        self._apply(self.client.commit_turn())

    def clear_input(self) -> None:
        self._apply(self.client.clear_input())

    def cancel_response(self) -> None:
        self._apply(self.client.cancel_response())

    def update_config(self, config: SessionConfig) -> None:
        self._apply(self.client.update_session(config))
