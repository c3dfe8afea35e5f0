"""A PulseAudio server with a null sink, so tests play and record real audio streams without a sound card.

    with pulse_server() as server:       # or: server = start_pulse_server(); ...; stop_pulse_server(server)
        ...  # sounddevice's "default"/"pulse" devices now play into parley_sink and record its monitor

If a PulseAudio server is already reachable (`pactl info` works), it is reused: the null sink is
loaded into it if missing and made the default sink / its monitor the default source; on stop the
module we loaded is unloaded and the previous defaults are restored. Otherwise a private daemon is
started in the foreground (`--daemonize=no`, so its PID is the child's PID) with its own runtime
directory and socket, `PULSE_SERVER` is pointed at it for this process and its children, and it is
stopped by that PID at the end.

Either way a silent null source is looped into the sink at low latency and start-up waits (~2 s)
until the sink has stopped rendering far ahead; without it about half of the PortAudio streams
stalled at start (see _KEEPALIVE_MODULES).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

SINK_NAME = "parley_sink"
SILENCE_SOURCE = "parley_silence"

# Why a silent loopback: an idle module-null-sink renders up to 2 s ahead of real time (its maximum
# latency). A client that connects then gets its first block consumed and waits until that 2 s of
# rendering has drained — PortAudio's ALSA pulse plugin streams stalled at start about half the
# time. A permanent low-latency client (null source -> loopback -> the sink) keeps the sink's
# requested latency low, and every stream then starts at once.
_KEEPALIVE_MODULES = (
    ("module-null-source", f"source_name={SILENCE_SOURCE}"),
    ("module-loopback", f"source={SILENCE_SOURCE} sink={SINK_NAME} latency_msec=20 source_dont_move=true "
                        "sink_dont_move=true"),
)
SINK_READY_LATENCY_USEC = 50_000


class PulseServerError(RuntimeError):
    pass


@dataclass
class PulseServer:
    server: str | None  # PULSE_SERVER value for clients (None: the server libpulse finds by default)
    sink: str = SINK_NAME
    pid: int | None = None  # our own daemon; None when an existing server was reused
    runtime_dir: str | None = None
    loaded_modules: list[int] = field(default_factory=list)  # modules we loaded into a reused server
    previous_defaults: tuple[str | None, str | None] = (None, None)
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _saved_env: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def source(self) -> str:
        return f"{self.sink}.monitor"

    @property
    def owned(self) -> bool:
        return self.pid is not None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.server:
            env["PULSE_SERVER"] = self.server
        return env

    def pactl(self, *args: str, timeout: float = 5.0) -> subprocess.CompletedProcess:
        return _pactl(*args, env=self.env(), timeout=timeout)


def _pactl(*args: str, env: dict[str, str] | None = None, timeout: float = 5.0) -> subprocess.CompletedProcess:
    return subprocess.run(["pactl", *args], env=env, capture_output=True, text=True, timeout=timeout)


def server_reachable(env: dict[str, str] | None = None) -> bool:
    if shutil.which("pactl") is None:
        return False
    try:
        return _pactl("info", env=env, timeout=3.0).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _info(server: PulseServer) -> dict[str, str]:
    out = server.pactl("info").stdout
    info = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def _check(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        raise PulseServerError(f"{what} failed: {result.stderr.strip() or result.stdout.strip()}")


def _set_defaults(server: PulseServer) -> None:
    _check(server.pactl("set-default-sink", server.sink), "pactl set-default-sink")
    _check(server.pactl("set-default-source", server.source), "pactl set-default-source")


def _sink_latency_usec(server: PulseServer) -> int | None:
    current = None
    for line in server.pactl("list", "sinks").stdout.splitlines():
        line = line.strip()
        if line.startswith("Name:"):
            current = line.partition(":")[2].strip()
        elif line.startswith("Latency:") and current == server.sink:
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def _wait_sink_ready(server: PulseServer, timeout: float) -> None:
    """Wait until the null sink stopped rendering far ahead (see _KEEPALIVE_MODULES); ~2.5 s."""
    deadline = time.monotonic() + timeout
    while True:
        latency = _sink_latency_usec(server)
        if latency is not None and latency < SINK_READY_LATENCY_USEC:
            return
        if time.monotonic() > deadline:
            raise PulseServerError(f"sink {server.sink} still has {latency} us of latency after {timeout:.0f} s")
        time.sleep(0.1)


def _die_with_parent() -> None:  # runs in the child before exec (Linux): SIGTERM when the test process dies
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


def start_pulse_server(sink: str = SINK_NAME, timeout: float = 20.0) -> PulseServer:
    """Reuse a reachable PulseAudio server or start a private one; either way with `sink` as default."""
    if shutil.which("pulseaudio") is None and not server_reachable():
        raise PulseServerError("the pulseaudio binary is not installed (Debian package: pulseaudio)")
    if shutil.which("pactl") is None:
        raise PulseServerError("pactl is not installed (Debian package: pulseaudio-utils)")

    if server_reachable():
        server = PulseServer(server=os.environ.get("PULSE_SERVER"), sink=sink)
        info = _info(server)
        server.previous_defaults = (info.get("Default Sink"), info.get("Default Source"))
        sinks = server.pactl("list", "short", "sinks").stdout.split()
        modules = [("module-null-sink", f"sink_name={sink}")] if sink not in sinks else []
        if SILENCE_SOURCE not in server.pactl("list", "short", "sources").stdout.split():
            modules += [(name, args.replace(SINK_NAME, sink)) for name, args in _KEEPALIVE_MODULES]
        for name, args in modules:
            result = server.pactl("load-module", name, *args.split())
            _check(result, f"loading {name}")
            server.loaded_modules.append(int(result.stdout.strip()))
        _set_defaults(server)
        _wait_sink_ready(server, timeout)
        return server

    runtime = tempfile.mkdtemp(prefix="parley-pulse-")
    socket_path = os.path.join(runtime, "native")
    env = dict(os.environ)
    env.update(PULSE_RUNTIME_PATH=runtime, PULSE_STATE_PATH=runtime, PULSE_SERVER=f"unix:{socket_path}")
    log_path = os.path.join(runtime, "pulseaudio.log")
    cmd = [
        "pulseaudio",
        "-n",  # no default.pa: only the modules below (no hardware probing)
        "--daemonize=no",
        "--system=false",
        "--exit-idle-time=-1",
        "--disallow-exit",
        "--use-pid-file=no",
        "--log-target=stderr",
        "-L", f"module-native-protocol-unix socket={socket_path} auth-anonymous=1",
        "-L", f"module-null-sink sink_name={sink}",
    ]
    for name, args in _KEEPALIVE_MODULES:
        cmd += ["-L", f"{name} {args.replace(SINK_NAME, sink)}"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                preexec_fn=_die_with_parent, start_new_session=True)
    server = PulseServer(server=f"unix:{socket_path}", sink=sink, pid=proc.pid, runtime_dir=runtime, _proc=proc)
    atexit.register(stop_pulse_server, server)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            text = open(log_path, errors="replace").read()[-2000:]
            stop_pulse_server(server)
            raise PulseServerError(f"pulseaudio exited with code {proc.returncode}:\n{text}")
        if server_reachable(server.env()):
            break
        if time.monotonic() > deadline:
            stop_pulse_server(server)
            raise PulseServerError(f"pulseaudio did not answer `pactl info` within {timeout:.0f} s")
        time.sleep(0.05)
    try:
        _set_defaults(server)
        _wait_sink_ready(server, timeout)
    except Exception:
        stop_pulse_server(server)
        raise
    # clients in this process (libpulse inside the ALSA pulse plugin) and its children find it here
    for key in ("PULSE_SERVER",):
        server._saved_env[key] = os.environ.get(key)
    os.environ["PULSE_SERVER"] = server.server
    return server


def stop_pulse_server(server: PulseServer) -> None:
    """Undo start_pulse_server: stop our daemon by its PID, or tidy up a reused server. Idempotent."""
    for key, value in server._saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server._saved_env.clear()
    proc, server._proc = server._proc, None
    if proc is not None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if server.runtime_dir:
            shutil.rmtree(server.runtime_dir, ignore_errors=True)
        return
    if server.pid is None and (server.loaded_modules or any(server.previous_defaults)):
        with contextlib.suppress(Exception):
            prev_sink, prev_source = server.previous_defaults
            if prev_sink and prev_sink != server.sink:
                server.pactl("set-default-sink", prev_sink)
            if prev_source and prev_source != server.source:
                server.pactl("set-default-source", prev_source)
            for index in reversed(server.loaded_modules):
                server.pactl("unload-module", str(index))
        server.loaded_modules = []
        server.previous_defaults = (None, None)


@contextlib.contextmanager
def pulse_server(sink: str = SINK_NAME):
    server = start_pulse_server(sink)
    try:
        yield server
    finally:
        stop_pulse_server(server)


if __name__ == "__main__":  # manual check: python -m tests.pulse_server
    with pulse_server() as s:
        print(s)
        print(s.pactl("info").stdout)
