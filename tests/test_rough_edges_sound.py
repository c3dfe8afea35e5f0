"""With PulseAudio installed but no sound server running, the app starts the user's server before it opens its
sound devices (desktop/audio/sound_server.py), and finds them; when it cannot, the window says what to run.

Each test uses a private runtime directory and home, so the server it finds (or starts) is its own, never the
developer's nor the one tests/pulse_server.py runs for the other tests; a server started here is stopped by the
PID in its runtime directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop.audio.sound_server import DISABLE_ENV, ensure_sound_server, sound_server_reachable


def _private_env(tmp_path: Path, path: str | None = None) -> dict[str, str]:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    (tmp_path / "home").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PULSE_SERVER", "PULSE_RUNTIME_PATH", DISABLE_ENV,
                                                             "OPENAI_API_KEY", "DBUS_SESSION_BUS_ADDRESS")}
    env.update(HOME=str(tmp_path / "home"), XDG_RUNTIME_DIR=str(runtime), QT_QPA_PLATFORM="offscreen",
               PARLEY_DISABLE_KEYRING="1")
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"),
                     ("XDG_CACHE_HOME", "cache")):
        env[var] = str(tmp_path / sub)
    if path is not None:
        env["PATH"] = path
    return env


def _stop_server(runtime: Path) -> None:
    pid_file = runtime / "pulse" / "pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _parley(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "desktop.ui.app", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.skipif(shutil.which("pulseaudio") is None, reason="needs the pulseaudio binary (Debian: pulseaudio)")
def test_with_no_server_running_the_app_starts_one_and_finds_the_devices(tmp_path):
    env = _private_env(tmp_path)
    runtime = Path(env["XDG_RUNTIME_DIR"])
    assert not sound_server_reachable(env)  # nothing is running for this "user"
    try:
        result = _parley(env, "--offline", "--quit-after", "2")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "sound server: started (pulseaudio --start)" in result.stderr, result.stderr[-3000:]
        devices = [ln for ln in result.stderr.splitlines() if "parley: sound devices:" in ln]
        assert devices and "mic: " in devices[0] and "speaker: " in devices[0], result.stderr[-3000:]
        assert "not found" not in devices[0], devices[0]
        assert "No sound server" not in result.stderr
        assert sound_server_reachable(env)  # it is the user's server now, running on after Parley
        # Run again: it is found running and left as it is.
        again = _parley(env, "--offline", "--quit-after", "1")
        assert again.returncode == 0, again.stderr[-3000:]
        assert "sound server: running" in again.stderr, again.stderr[-3000:]
    finally:
        _stop_server(runtime)


def test_when_no_server_can_be_started_the_window_says_what_to_run(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    pulseaudio = fake / "pulseaudio"  # installed, but it will not start (as on a broken configuration)
    pulseaudio.write_text("#!/bin/sh\necho 'E: [pulseaudio] main.c: Daemon startup failed.' >&2\nexit 1\n")
    pulseaudio.chmod(0o755)
    env = _private_env(tmp_path, path=f"{fake}:{os.path.dirname(sys.executable)}:/bin")
    check = ensure_sound_server(env, timeout_s=1.0)
    assert check.state == "failed" and "Daemon startup failed" in check.detail
    assert "pulseaudio --start" in check.advice and check.advice.count(".") == 1  # one sentence, with the command
    result = _parley(env, "--offline", "--quit-after", "2", "--screenshot", str(tmp_path / "window.png"))
    assert result.returncode == 0, result.stderr[-3000:]
    # The window's notice (main_window logs what it shows as a warning), after the missing devices' own.
    shown = [ln.split("desktop.ui.main_window: ", 1)[1] for ln in result.stderr.splitlines()
             if "WARNING desktop.ui.main_window: " in ln]
    assert shown and shown[-1] == check.advice, shown


def test_a_server_chosen_by_pulse_server_or_the_tests_is_left_alone(tmp_path):
    env = _private_env(tmp_path)
    chosen = ensure_sound_server(dict(env, PULSE_SERVER=f"unix:{tmp_path}/nowhere"))
    assert chosen.state == "left alone" and "PULSE_SERVER" in chosen.detail
    assert ensure_sound_server(dict(env, **{DISABLE_ENV: "1"})).state == "left alone"
    assert os.environ.get(DISABLE_ENV) == "1"  # the test suite's own runs never start one (tests/conftest.py)
    assert not (Path(env["XDG_RUNTIME_DIR"]) / "pulse" / "pid").exists()
