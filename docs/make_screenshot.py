"""Make docs/screenshot.png: a spoken conversation with the offline engine, including a barge-in.

    .venv/bin/python docs/make_screenshot.py

A WAV made of two test fixtures ("Tell me a long story about a dragon.", then, while the story is
being told, "What time is it?") is played into Parley as its microphone; the answers play into a
PulseAudio null sink (tests/pulse_server.py), so the story is really heard for a while before the
question cuts it off. Parley runs offscreen with a fresh HOME and saves its window just after the
second answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pulse_server import pulse_server  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "audio"


def _read(name: str) -> tuple[np.ndarray, int]:
    with wave.open(str(FIXTURES / name)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def main() -> int:
    story, rate = _read("tell_story.wav")
    question, _ = _read("what_time.wav")

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(int(seconds * rate), dtype=np.int16)

    mic = np.concatenate([silence(0.5), story, silence(4.5), question, silence(6.0)])
    out = ROOT / "docs" / "screenshot.png"
    with tempfile.TemporaryDirectory() as tmp, pulse_server() as server:
        wav = Path(tmp) / "mic.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(mic.tobytes())
        env = server.env()
        env.update(HOME=tmp, QT_QPA_PLATFORM="offscreen")
        env.pop("OPENAI_API_KEY", None)
        # The question ends ~9.5 s after launch (1 s to a connected window, then the WAV); its answer
        # follows within ~0.7 s.
        cmd = [sys.executable, "-m", "desktop.ui.app", "--offline", "--audio-in", str(wav),
               "--quit-after", "10.6", "--screenshot", str(out)]
        result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not out.exists():
        sys.stderr.write(result.stderr[-3000:])
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
