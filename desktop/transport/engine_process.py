"""Starting and stopping the embedded engine as a child process on 127.0.0.1 at a free port."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections import deque

from ..engine_part import engine_part_problem, install_hint

log = logging.getLogger(__name__)

READY_PREFIX = "PARLEY_ENGINE_READY"


class EngineStartError(Exception):
    pass


class EngineProcess:
    def __init__(self, log_level: str = "info", brain_args: list[str] | None = None, brain_key: str | None = None) -> None:
        self.log_level = log_level
        #: `--llm-url URL --llm-model NAME` for a local model's brain (empty: the built-in responder); the
        #: server's key, if any, goes through the environment (PARLEY_LLM_KEY), not the command line.
        self.brain_args: list[str] = list(brain_args or [])
        self.brain_key = brain_key
        self.port: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr_tail: deque[str] = deque(maxlen=30)
        self._pump: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def describe(self) -> str:
        """For the log when a connection to the engine drops: whether it is still running, and its last words."""
        if self._proc is None:
            return "not started"
        state = "running" if self._proc.returncode is None else f"exited with {self._proc.returncode}"
        tail = " | ".join(list(self._stderr_tail)[-5:])
        return f"{state}; last log lines: {tail or '(none)'}"

    def _command(self) -> list[str]:
        if getattr(sys, "frozen", False):  # a PyInstaller bundle: the app binary runs the engine
            return [sys.executable, "--engine"]
        return [sys.executable, "-m", "desktop.engine"]

    async def start(self, timeout: float = 30.0) -> int:
        # An installation without the offline engine's part (Linux: only the app archive unpacked) says so
        # plainly instead of starting an engine that would fail on its first import.
        problem = engine_part_problem()
        if problem is not None:  # shown as "The offline engine could not start: it is not installed …"
            raise EngineStartError(f"it is {problem} in this copy of Parley. To get it back, {install_hint()}.")
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        env.pop("OPENAI_API_KEY", None)  # the engine never needs it
        for name in ("PARLEY_LLM_URL", "PARLEY_LLM_MODEL", "PARLEY_LLM_KEY"):  # the brain is the app's choice
            env.pop(name, None)
        if self.brain_key:
            env["PARLEY_LLM_KEY"] = self.brain_key
        cmd = self._command() + ["--host", "127.0.0.1", "--port", "0", "--log-level", self.log_level, "--exit-with-stdin",
                                 *self.brain_args]
        # The engine's stdin is a pipe only we hold: when this process ends in any way (even kill -9), the
        # pipe closes and the engine exits by itself.
        self._proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        self._pump = asyncio.create_task(self._pump_stderr())
        assert self._proc.stdout is not None
        try:
            while True:
                line = await asyncio.wait_for(self._proc.stdout.readline(), timeout)
                if not line:
                    await self._proc.wait()
                    raise EngineStartError(
                        f"the offline engine exited ({self._proc.returncode}): " + " | ".join(list(self._stderr_tail)[-3:])
                    )
                text = line.decode(errors="replace").strip()
                if text.startswith(READY_PREFIX):
                    self.port = int(text.split("port=", 1)[1])
                    log.info("offline engine listening on port %d", self.port)
                    return self.port
        except asyncio.TimeoutError:
            await self.stop()
            raise EngineStartError("the offline engine did not start in time") from None

    async def _pump_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        engine_log = logging.getLogger("parley.engine")
        while line := await self._proc.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self._stderr_tail.append(text)
            engine_log.debug("%s", text)

    async def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        if self._pump is not None:
            self._pump.cancel()

    def stop_now(self) -> None:
        """Synchronous last resort at interpreter exit."""
        if self._proc is not None and self._proc.returncode is None:
            try:
                self._proc.terminate()
            except ProcessLookupError:
                pass
