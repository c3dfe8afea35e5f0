"""The engine Parley starts never outlives it, even when Parley is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is as good as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_engine_exits_when_its_parent_is_killed():
    script = textwrap.dedent(
        """
        import asyncio
        from desktop.transport.engine_process import EngineProcess
        async def main():
            engine = EngineProcess()
            await engine.start()
            print(engine._proc.pid, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        engine_pid = int(parent.stdout.readline())
        assert _alive(engine_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(engine_pid):
            time.sleep(0.1)
        assert not _alive(engine_pid), "the engine outlived the killed app"
    finally:
        if parent.poll() is None:
            parent.kill()
