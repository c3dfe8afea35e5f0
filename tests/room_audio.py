"""A room for real-audio tests: the speaker is the null sink `parley_sink`; the microphone is the monitor of a
second null sink, `parley_room`, into which a test plays the user's voice (paplay) and, optionally, the
speaker's own output as echo (a PulseAudio loopback at a chosen level). The speaker is recorded with parec.
"""

from __future__ import annotations

import os
import subprocess
import time
import wave
from pathlib import Path

import numpy as np

from tests.pulse_server import SILENCE_SOURCE, PulseServer

ROOM = "parley_room"


def _sink_input_of_module(server: PulseServer, module: int) -> str:
    """The sink input a module (e.g. a loopback) owns; `pactl list short` does not show the owner."""
    current = None
    for line in server.pactl("list", "sink-inputs").stdout.splitlines():
        line = line.strip()
        if line.startswith("Sink Input #"):
            current = line.split("#", 1)[1]
        elif line.startswith("Owner Module:") and line.split(":", 1)[1].strip() == str(module) and current:
            return current
    raise RuntimeError(f"no sink input of module {module}")


class Room:
    def __init__(self, server: PulseServer) -> None:
        self.server = server
        self.modules: list[int] = []
        self._saved_source = os.environ.get("PULSE_SOURCE")
        self._procs: list[subprocess.Popen] = []
        sinks = server.pactl("list", "short", "sinks").stdout.split()
        if ROOM not in sinks:
            self._load("module-null-sink", f"sink_name={ROOM}")
        # A silent source looped in keeps the null sink's clock steady (see tests/pulse_server.py).
        self._load("module-loopback", f"source={SILENCE_SOURCE} sink={ROOM} latency_msec=20 source_dont_move=true sink_dont_move=true")
        os.environ["PULSE_SOURCE"] = f"{ROOM}.monitor"
        from desktop.audio.devices import refresh_devices

        refresh_devices()
        time.sleep(0.5)

    def _load(self, name: str, args: str) -> int:
        result = self.server.pactl("load-module", name, *args.split())
        if result.returncode != 0:
            raise RuntimeError(f"pactl load-module {name} failed: {result.stderr}")
        module = int(result.stdout.strip())
        self.modules.append(module)
        return module

    def add_echo(self, gain_db: float, latency_ms: int = 30) -> None:
        """Loop the speaker's output back into the microphone at `gain_db` (0 = as loud as played)."""
        module = self._load(
            "module-loopback",
            f"source={self.server.sink}.monitor sink={ROOM} latency_msec={latency_ms} source_dont_move=true sink_dont_move=true",
        )
        # A linear amplitude factor: pactl reads "31.6%" on its cubic volume scale (-30 dB), not as -10 dB.
        factor = f"{max(0.0, 10 ** (gain_db / 20)):.6f}"
        sink_input = _sink_input_of_module(self.server, module)
        result = self.server.pactl("set-sink-input-volume", sink_input, factor)
        if result.returncode != 0:
            raise RuntimeError(f"pactl set-sink-input-volume {sink_input} {factor} failed: {result.stderr}")

    def say(self, wav: Path, gain_db: float = 0.0) -> subprocess.Popen:
        """Play a WAV into the room, as the user speaking."""
        volume = str(int(65536 * 10 ** (gain_db / 20)))
        proc = subprocess.Popen(
            ["paplay", f"--device={ROOM}", f"--volume={volume}", str(wav)],
            env=self.server.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._procs.append(proc)
        return proc

    def record_speaker(self, path: Path) -> subprocess.Popen:
        """Record what the speaker plays (24 kHz mono s16le raw) until `stop_recording`."""
        proc = subprocess.Popen(
            ["parec", f"--device={self.server.sink}.monitor", "--format=s16le", "--rate=24000", "--channels=1",
             "--latency-msec=10", str(path)],
            env=self.server.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._procs.append(proc)
        return proc

    @staticmethod
    def read_raw(path: Path) -> np.ndarray:
        return np.frombuffer(path.read_bytes(), dtype="<i2") if path.exists() else np.zeros(0, dtype="<i2")

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(3)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for module in reversed(self.modules):
            self.server.pactl("unload-module", str(module))
        if self._saved_source is None:
            os.environ.pop("PULSE_SOURCE", None)
        else:
            os.environ["PULSE_SOURCE"] = self._saved_source


def wav_duration(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def loud_spans(pcm: np.ndarray, threshold_dbfs: float = -45.0, block: int = 240) -> list[tuple[int, int]]:
    """[start, end) sample spans of 10 ms blocks louder than the threshold, merged across < 10 ms gaps."""
    n = len(pcm) // block
    if n == 0:
        return []
    x = pcm[: n * block].astype(np.float64).reshape(n, block) / 32768.0
    rms = np.sqrt((x * x).mean(axis=1))
    loud = rms > 10 ** (threshold_dbfs / 20)
    spans: list[tuple[int, int]] = []
    for i, flag in enumerate(loud):
        if flag:
            if spans and spans[-1][1] == i * block:
                spans[-1] = (spans[-1][0], (i + 1) * block)
            else:
                spans.append((i * block, (i + 1) * block))
    return spans
