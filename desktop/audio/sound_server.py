"""The user's sound server (PulseAudio, or PipeWire's pulse), started when it is installed but not running. No Qt.

On a Linux desktop without a running sound server, PortAudio finds no device at all ("no speaker found"), though
`./dev run` installed PulseAudio. `ensure_sound_server()` runs before the sound devices are first opened: when
no server answers it starts one, through the systemd user unit where there is one, else `pulseaudio --start`,
and waits until it answers. When that cannot be done, its `advice` says in one sentence what to run.

It leaves alone a server chosen with PULSE_SERVER (the user's, or the one tests/pulse_server.py starts for the
tests) and does nothing when PARLEY_NO_SOUND_SERVER_START is set (the tests set it: they bring their own).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = ["DISABLE_ENV", "SoundServerCheck", "ensure_sound_server", "sound_server_reachable"]

#: Set (to anything but "" or "0") to never start a sound server.
DISABLE_ENV = "PARLEY_NO_SOUND_SERVER_START"
#: systemd user units that provide a pulse server, in the order tried.
_UNITS = ("pipewire-pulse.service", "pulseaudio.service")
_START_COMMAND = "pulseaudio --start"


@dataclass(frozen=True)
class SoundServerCheck:
    #: "running" (it already was), "started", "left alone" (PULSE_SERVER, disabled, not Linux),
    #: "not installed" (neither PulseAudio nor PipeWire's pulse), "failed" (installed, but it would not start).
    state: str
    detail: str = ""  # for the log: how it was started, or why not
    advice: str = ""  # when "not installed" or "failed": one sentence for the window, with the command to run

    @property
    def ok(self) -> bool:
        return self.state in ("running", "started", "left alone")


def _which(name: str, env: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=env.get("PATH", os.defpath))


def _run(cmd: list[str], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, env=dict(env), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("sound server: %s: %s", " ".join(cmd), exc)
        return None


def _native_socket(env: Mapping[str, str]) -> str | None:
    """Where a per-user pulse server listens, when the environment says (PULSE_RUNTIME_PATH, XDG_RUNTIME_DIR)."""
    if env.get("PULSE_RUNTIME_PATH"):
        return os.path.join(env["PULSE_RUNTIME_PATH"], "native")
    if env.get("XDG_RUNTIME_DIR"):
        return os.path.join(env["XDG_RUNTIME_DIR"], "pulse", "native")
    return None


def sound_server_reachable(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a pulse server answers: its socket accepts a connection, or `pactl info` (or `pulseaudio --check`)
    succeeds."""
    env = os.environ if environ is None else environ
    path = _native_socket(env)
    if path and os.path.exists(path):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            try:
                s.connect(path)
                return True
            except OSError:
                pass  # a stale socket: ask the tools
    pactl = _which("pactl", env)
    if pactl:
        result = _run([pactl, "info"], env, 3.0)
        return result is not None and result.returncode == 0
    pulseaudio = _which("pulseaudio", env)
    if pulseaudio:
        result = _run([pulseaudio, "--check"], env, 3.0)
        return result is not None and result.returncode == 0
    return False


def _wait_reachable(env: Mapping[str, str], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if sound_server_reachable(env):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _unit_installed(systemctl: str, unit: str, env: Mapping[str, str]) -> bool:
    result = _run([systemctl, "--user", "cat", unit], env, 5.0)
    return result is not None and result.returncode == 0


def ensure_sound_server(environ: Mapping[str, str] | None = None, timeout_s: float = 5.0) -> SoundServerCheck:
    """Start the user's sound server when one is installed and none answers. Never raises."""
    env = dict(os.environ if environ is None else environ)
    if not sys.platform.startswith("linux"):
        return SoundServerCheck("left alone", "not Linux")
    if env.get(DISABLE_ENV, "") not in ("", "0"):
        return SoundServerCheck("left alone", f"{DISABLE_ENV} is set")
    if env.get("PULSE_SERVER"):
        return SoundServerCheck("left alone", f"PULSE_SERVER={env['PULSE_SERVER']} chooses the server")
    try:
        check = _ensure(env, timeout_s)
        if check.state == "started" and "sounddevice" in sys.modules:
            from .devices import refresh_devices

            refresh_devices()  # PortAudio listed the devices without the server: let it look again
        return check
    except Exception as exc:  # noqa: BLE001 - sound must never keep the window from starting
        log.warning("sound server: checking it failed: %s", exc)
        return SoundServerCheck("failed", str(exc), _advice_to_start())


def _advice_to_start() -> str:
    return (f"No sound server is running and Parley could not start one: run “{_START_COMMAND}” "
            "(or “systemctl --user start pulseaudio”) in a terminal, then start Parley again.")


def _ensure(env: dict[str, str], timeout_s: float) -> SoundServerCheck:
    if sound_server_reachable(env):
        return SoundServerCheck("running")
    tried: list[str] = []
    systemctl = _which("systemctl", env)
    if systemctl:
        for unit in _UNITS:
            if not _unit_installed(systemctl, unit, env):
                continue
            result = _run([systemctl, "--user", "start", unit], env, timeout_s)
            if result is not None and result.returncode == 0 and _wait_reachable(env, timeout_s):
                log.info("sound server: started the systemd user unit %s", unit)
                return SoundServerCheck("started", f"systemctl --user start {unit}")
            why = (result.stderr.strip() or f"exit code {result.returncode}") if result is not None else "no answer"
            tried.append(f"systemctl --user start {unit}: {why}")
    pulseaudio = _which("pulseaudio", env)
    if pulseaudio:
        result = _run([pulseaudio, "--start"], env, timeout_s)
        if result is not None and result.returncode == 0 and _wait_reachable(env, timeout_s):
            log.info("sound server: started PulseAudio (%s)", _START_COMMAND)
            return SoundServerCheck("started", _START_COMMAND)
        why = ""
        if result is not None:
            lines = [ln for ln in result.stderr.splitlines() if "not intended to be run as root" not in ln]
            why = " ".join(lines).strip() or f"exit code {result.returncode}"
        tried.append(f"{_START_COMMAND}: {why or 'no answer'}")
    if not tried:
        return SoundServerCheck(
            "not installed", "neither PulseAudio nor PipeWire's pulse server is installed",
            "No sound server is installed: install PulseAudio (“sudo apt install pulseaudio”), then start "
            "Parley again.")
    detail = "; ".join(tried)
    log.warning("sound server: none is running and none could be started (%s)", detail)
    return SoundServerCheck("failed", detail, _advice_to_start())
