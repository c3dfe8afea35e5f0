"""A PulseAudio "stage" for the barge-in latency benchmark: the microphone and the speaker on ONE recording.

    stage = Stage(server)            # server: tests.pulse_server.pulse_server()
    rec = stage.record(path)          # 2-channel s16le at 48 kHz: left = the microphone, right = the speaker
    stage.say(wav)                    # the user speaks into the microphone
    ...
    left, right = stage.read(path)

Layout (all on one null sink, so both channels share the sink's sample clock; nothing is resampled
or buffered between what the microphone gets and what the speaker plays, apart from what Parley itself
does):

    parley_stage        a 2-channel null sink (front-left, front-right); recorded from its monitor
    parley_stage_spk    remap sink -> parley_stage front-right: the app's speaker (PULSE_SINK)
    parley_stage_voice  remap sink -> parley_stage front-left: the user's voice (paplay)
    parley_stage_mic    remap source <- parley_stage.monitor front-left: the app's microphone (PULSE_SOURCE)

So the left channel of the recording is exactly the signal at the microphone, the right channel exactly
what the speaker plays, sample-aligned: onset of speech at the microphone and the last audible sample
of the assistant are read off the same timeline. The app's own capture buffering, processing and
output buffering all fall inside the measured interval, as they do for a user.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np

from tests.pulse_server import SILENCE_SOURCE, PulseServer

STAGE = "parley_stage"
SPEAKER = "parley_stage_spk"
VOICE = "parley_stage_voice"
MIC = "parley_stage_mic"
RATE = 48000


class Stage:
    def __init__(self, server: PulseServer) -> None:
        self.server = server
        self.modules: list[int] = []
        self._procs: list[subprocess.Popen] = []
        self._saved = {k: os.environ.get(k) for k in ("PULSE_SINK", "PULSE_SOURCE")}
        self._load("module-null-sink", f"sink_name={STAGE} channels=2 channel_map=front-left,front-right rate={RATE}")
        # keeps the null sink's clock steady and its rendering close to real time (see tests/pulse_server.py)
        self._load("module-loopback", f"source={SILENCE_SOURCE} sink={STAGE} latency_msec=20 "
                                      "source_dont_move=true sink_dont_move=true")
        self._load("module-remap-sink", f"sink_name={SPEAKER} master={STAGE} channels=1 channel_map=mono "
                                        "master_channel_map=front-right remix=no")
        self._load("module-remap-sink", f"sink_name={VOICE} master={STAGE} channels=1 channel_map=mono "
                                        "master_channel_map=front-left remix=no")
        self._load("module-remap-source", f"source_name={MIC} master={STAGE}.monitor channels=1 channel_map=mono "
                                          "master_channel_map=front-left remix=no")
        os.environ["PULSE_SINK"] = SPEAKER
        os.environ["PULSE_SOURCE"] = MIC
        from desktop.audio.devices import refresh_devices

        refresh_devices()
        time.sleep(0.5)

    def _load(self, name: str, args: str) -> int:
        result = self.server.pactl("load-module", name, *args.split())
        if result.returncode != 0:
            self.close()
            raise RuntimeError(f"pactl load-module {name} {args} failed: {result.stderr.strip()}")
        module = int(result.stdout.strip())
        self.modules.append(module)
        return module

    def say(self, wav: Path) -> subprocess.Popen:
        """Play a WAV into the microphone (the user speaking)."""
        proc = subprocess.Popen(["paplay", f"--device={VOICE}", str(wav)], env=self.server.env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._procs.append(proc)
        return proc

    def record(self, path: Path) -> subprocess.Popen:
        """Record the stage (left = microphone, right = speaker), 48 kHz s16le stereo, until stop()."""
        proc = subprocess.Popen(
            ["parec", f"--device={STAGE}.monitor", "--format=s16le", f"--rate={RATE}", "--channels=2",
             "--channel-map=front-left,front-right", "--latency-msec=10", str(path)],
            env=self.server.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(3)

    @staticmethod
    def read(path: Path) -> tuple[np.ndarray, np.ndarray]:
        data = np.frombuffer(path.read_bytes(), dtype="<i2") if path.exists() else np.zeros(0, dtype="<i2")
        data = data[: len(data) // 2 * 2].reshape(-1, 2)
        return data[:, 0], data[:, 1]

    def close(self) -> None:
        for proc in self._procs:
            self.stop(proc)
        self._procs.clear()
        for module in reversed(self.modules):
            self.server.pactl("unload-module", str(module))
        self.modules.clear()
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
