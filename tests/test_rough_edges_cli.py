"""`parley --audio-in FILE`: --help says that listening goes on after the file; --quit-at-end quits once the file
has been spoken and its answer has finished playing (exit 0), on the embedded engine, as a script would run it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import wave

from tests.conftest import AUDIO


def _env(tmp_path) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PARLEY_DISABLE_KEYRING="1")
    env.pop("OPENAI_API_KEY", None)
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"),
                     ("XDG_CACHE_HOME", "cache")):
        env[var] = str(tmp_path / sub)
    return env


def _parley(tmp_path, *args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "desktop.ui.app", *args], env=_env(tmp_path),
                            capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - t0


def test_help_says_listening_goes_on_after_the_file_and_how_to_quit(tmp_path):
    result, _ = _parley(tmp_path, "--help", timeout=60)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "silence follows and Parley keeps listening" in text
    assert "--quit-at-end" in text and "finished playing" in text


def test_quit_at_end_quits_after_the_answer_has_played(tmp_path):
    wav = AUDIO / "what_time.wav"
    with wave.open(str(wav)) as w:
        file_s = w.getnframes() / w.getframerate()
    result, elapsed = _parley(tmp_path, "--offline", "--no-speaker", "--audio-in", str(wav), "--quit-at-end")
    assert result.returncode == 0, (result.stdout, result.stderr[-2000:])
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert lines["heard"].lower().startswith("what time is it"), result.stdout
    assert lines["answer"].startswith("It is"), result.stdout
    played, _, received = lines["played"].removesuffix(" s").partition(" s of ")
    assert float(received) > 0.5 and float(played) == float(received), result.stdout  # all of it was played
    assert elapsed > file_s + float(played)  # it did not leave before the answer had been heard out


def test_quit_at_end_without_a_file_is_refused_with_a_message(tmp_path):
    result, _ = _parley(tmp_path, "--offline", "--quit-at-end", timeout=60)
    assert result.returncode == 2
    assert "--quit-at-end needs --audio-in FILE" in result.stderr


def test_quit_at_end_with_a_file_that_cannot_be_played_says_why(tmp_path):
    missing = tmp_path / "no such file.wav"
    result, _ = _parley(tmp_path, "--offline", "--no-speaker", "--audio-in", str(missing), "--quit-at-end")
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"parley: Cannot play {missing} as input: audio file not found" in result.stderr
