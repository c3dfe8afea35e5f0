"""Finding the OpenAI-compatible chat servers running on this computer, and the offline engine's brain choice.

Connection → Offline brain lists the chat servers answering on loopback at their usual ports (Ollama
11434, the llama.cpp server 8080, LM Studio 1234, vLLM and the llama-cpp-python server 8000), each with
the models its `GET /v1/models` lists. Probing is blocking I/O with a short timeout, all ports at once on
worker threads: callers on an event loop run `discover` in an executor. No Qt here.

`BrainChoice` is what the user picked: the built-in responder (rules) or a server URL and model. It is
kept in the settings file without any key; a key the user typed for "Other URL…" goes to the OS keyring
(`desktop.secrets`) and reaches the engine through its environment (PARLEY_LLM_KEY), never its command line.
"""

from __future__ import annotations

import json
import re
import logging
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: The settings key of Connection → Offline brain's choice (absent: the built-in responder).
BRAIN_KEY = "engine.brain"
#: Loopback ports where local chat servers listen by default, and who listens there.
KNOWN_PORTS: tuple[tuple[int, str], ...] = (
    (11434, "Ollama"),
    (8080, "llama.cpp"),
    (1234, "LM Studio"),
    (8000, "vLLM or llama-cpp-python"),
)
#: Seconds to wait for a server's model list: nothing is there when nothing answers at once on loopback.
PROBE_TIMEOUT = 0.6

#: A server's `owned_by` in its model list, when it tells which server it is.
_OWNERS = {"llamacpp": "llama.cpp", "vllm": "vLLM", "me": "llama-cpp-python", "library": "Ollama", "ollama": "Ollama",
           "organization_owner": "LM Studio"}


@dataclass(frozen=True)
class LocalServer:
    """A chat server that answered: its name, its base URL (`http://127.0.0.1:PORT/v1`) and its models."""

    name: str
    url: str
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class BrainChoice:
    """Connection → Offline brain: `url` None is the built-in responder; else a chat server and a model."""

    url: str | None = None
    model: str = ""
    #: Who serves it ("llama.cpp", "Ollama", or the URL's host for one typed in), for the status bar.
    server: str = ""
    #: The key for the server is in the OS keyring (under `key_name`), never in the settings file.
    has_key: bool = False

    @property
    def is_rules(self) -> bool:
        return not self.url

    @property
    def key_name(self) -> str:
        return f"llm-key {self.url}"

    @property
    def label(self) -> str:
        """How the status bar names the provider: "offline · llama.cpp gemma3-270m" (rules: "offline engine")."""
        if self.is_rules:
            return "offline engine"
        return f"offline · {self.server or urlsplit(self.url or '').hostname or 'chat server'} {short_model(self.model)}".strip()

    def to_settings(self) -> dict[str, Any] | None:
        if self.is_rules:
            return None
        return {"url": self.url, "model": self.model, "server": self.server, "has_key": self.has_key}

    @classmethod
    def from_settings(cls, value: Any) -> "BrainChoice":
        """The saved choice; anything malformed is the built-in responder."""
        if not isinstance(value, dict) or not isinstance(value.get("url"), str) or not is_http_url(value["url"]):
            return cls()
        model = value.get("model") if isinstance(value.get("model"), str) else ""
        server = value.get("server") if isinstance(value.get("server"), str) else ""
        return cls(value["url"], model or "default", server, bool(value.get("has_key")))

    def engine_args(self) -> list[str]:
        """The engine's command-line arguments for this brain (the key goes through the environment)."""
        if self.is_rules:
            return []
        return ["--llm-url", self.url or "", "--llm-model", self.model or "default"]


def is_http_url(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def short_model(model: str) -> str:
    """A model id as people say it: a GGUF path's file name without the quantization ("gemma3-270m"),
    an Ollama tag without ":latest"."""
    name = PurePath(model).name if "/" in model or model.endswith(".gguf") else model
    name = name.removesuffix(".gguf").removesuffix(":latest")
    return re.sub(r"(?i)[-._](?:q\d[a-z0-9_]*|i?q\d_[a-z0-9_]+|f16|bf16|f32)$", "", name) or name


def models_url(url: str) -> str:
    """`http://host:port/v1` (or a `.../chat/completions` URL) to its `/v1/models` URL."""
    url = url.strip().rstrip("/")
    url = url.removesuffix("/chat/completions")
    return url + "/models"


def probe(url: str, name: str = "", timeout: float = PROBE_TIMEOUT, api_key: str | None = None) -> LocalServer | None:
    """The server at `url` (a base URL like `http://127.0.0.1:8080/v1`) with its models, or None when nothing
    answers there like an OpenAI-compatible server within `timeout`."""
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        with urllib.request.urlopen(urllib.request.Request(models_url(url), headers=headers), timeout=timeout) as response:
            data = json.loads(response.read(1_000_000))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.debug("no chat server at %s: %s", url, exc)
        return None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return None
    models = tuple(str(e["id"]) for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str) and e["id"])
    owners = {e.get("owned_by") for e in entries if isinstance(e, dict)}
    known = [_OWNERS[o] for o in owners if isinstance(o, str) and o in _OWNERS]
    return LocalServer(known[0] if len(known) == 1 else name or (urlsplit(url).hostname or url), url.rstrip("/"), models)


def discover(ports: tuple[tuple[int, str], ...] = KNOWN_PORTS, host: str = "127.0.0.1",
             timeout: float = PROBE_TIMEOUT) -> list[LocalServer]:
    """The chat servers answering on `host` at `ports` (all probed at once), in the order of `ports`."""
    if not ports:
        return []
    with ThreadPoolExecutor(max_workers=len(ports), thread_name_prefix="llm-probe") as pool:
        found = list(pool.map(lambda p: probe(f"http://{host}:{p[0]}/v1", p[1], timeout), ports))
    return [server for server in found if server is not None]


def still_there(choice: BrainChoice, timeout: float = PROBE_TIMEOUT * 2, api_key: str | None = None) -> bool:
    """Whether the chosen server answers at all (its model list). The rules are always there."""
    if choice.is_rules:
        return True
    return probe(choice.url or "", timeout=timeout, api_key=api_key) is not None
