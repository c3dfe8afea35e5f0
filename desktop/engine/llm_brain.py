"""A brain that forwards the conversation to an OpenAI-compatible chat-completions endpoint.

`parley-engine --llm-url http://127.0.0.1:8080/v1 --llm-model NAME` (llama.cpp server, Ollama, vLLM, ...):
each response sends the session instructions and the conversation (text, transcripts of speech, and images
as `image_url` parts) with `stream: true`, and yields the reply's text as the server-sent events arrive,
so the engine speaks the first sentence while the model is still writing the rest.

Function tools are forwarded as chat-completions `tools` / `tool_choice`; the tool calls the model returns
(streamed as `delta.tool_calls` pieces) are assembled and yielded as `ToolCall`s once the reply is complete,
after any text. Function calls and their outputs in the conversation go back as an assistant message's
`tool_calls` and `tool` messages.

The HTTP request runs on its own thread with the standard library (`http.client`), so the event loop is
never blocked and no extra dependency is needed. A cancelled answer (barge-in, `response.cancel`) shuts the
request's socket down at once: the reading thread wakes, reads nothing more, and the server sees the
connection close and stops generating (llama.cpp, llama-cpp-python, Ollama and vLLM all stop on a closed
stream). `LLMBrain.closed_early` counts the streams closed that way. The API key (`--llm-key` or env `PARLEY_LLM_KEY`) is only
ever sent in the `Authorization` header; it is never logged.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

from .brain import BrainError, BrainRequest, ToolCall

log = logging.getLogger(__name__)

#: Seconds to wait for the endpoint to connect or to send the next piece.
DEFAULT_TIMEOUT = 60.0
IDLE_HINT = "The user has been silent for a while. Briefly and kindly check whether they are still there."


def chat_completions_url(url: str) -> str:
    """`http://host:port/v1` (or the full `.../chat/completions` URL) to the chat-completions URL."""
    url = url.strip()
    if url.rstrip("/").endswith("/chat/completions"):
        return url.rstrip("/")
    return url.rstrip("/") + "/chat/completions"


def chat_messages(request: BrainRequest) -> list[dict[str, Any]]:
    """The request as chat-completions `messages` (images as `image_url` parts)."""
    instructions = request.instructions.strip()
    if request.idle:
        instructions = f"{instructions}\n\n{IDLE_HINT}".strip()
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for message in request.messages:
        if message.role == "assistant" and message.call is not None:
            call = {"id": message.call.call_id, "type": "function",
                    "function": {"name": message.call.name, "arguments": message.call.arguments}}
            previous = messages[-1] if messages else None
            if previous is not None and previous["role"] == "assistant":
                # Calls made together (or after words) are one assistant message, as chat completions wants
                # them before the tool messages that answer them.
                previous.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif message.role == "tool":
            messages.append({"role": "tool", "tool_call_id": message.call.call_id if message.call else "", "content": message.text})
        elif message.role == "user" and message.images:
            parts: list[dict[str, Any]] = []
            if message.text:
                parts.append({"type": "text", "text": message.text})
            parts.extend({"type": "image_url", "image_url": {"url": url}} for url in message.images)
            messages.append({"role": "user", "content": parts})
        elif message.text:
            messages.append({"role": message.role, "content": message.text})
    return messages


def chat_tools(request: BrainRequest) -> dict[str, Any]:
    """The request's function tools and tool choice as chat-completions fields (none when it has no tools)."""
    if not request.tools:
        return {}
    tools = [{"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}} for tool in request.tools]
    choice = request.tool_choice
    if isinstance(choice, dict):
        choice = {"type": "function", "function": {"name": choice["name"]}}
    return {"tools": tools, "tool_choice": choice}


class _ToolCallPieces:
    """Tool calls streamed as `delta.tool_calls` pieces (by index: the id and name first, then the
    arguments in fragments), assembled. The model's ids are not kept: the engine gives each call its own
    `call_id`, and the conversation sends that one back."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, pieces: Any) -> None:
        for position, piece in enumerate(pieces if isinstance(pieces, list) else []):
            if not isinstance(piece, dict):
                continue
            index = piece.get("index", position)
            call = self._calls.setdefault(index if isinstance(index, int) else position, {"name": "", "arguments": ""})
            function = piece.get("function") or {}
            if isinstance(function.get("name"), str):
                call["name"] += function["name"]
            if isinstance(function.get("arguments"), str):
                call["arguments"] += function["arguments"]

    def calls(self) -> list[ToolCall]:
        nameless = [i for i, c in self._calls.items() if not c["name"]]
        if nameless:
            log.warning("the language model sent %d tool call(s) without a function name; left out", len(nameless))
        return [ToolCall(name=c["name"], arguments=c["arguments"]) for _, c in sorted(self._calls.items()) if c["name"]]


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    except ValueError:
        pass
    return body.decode("utf-8", "replace").strip()[:200] or "no details"


class LLMBrain:
    name = "chat-completions endpoint"
    #: The model gets the images themselves; no need to OCR them first.
    wants_image_notes = False

    def __init__(self, url: str, model: str = "default", api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.endpoint = chat_completions_url(url)
        self.model = model
        self._api_key = api_key
        self.timeout = timeout
        #: Streams closed before the model had finished (the answer was cancelled): the server stopped there.
        self.closed_early = 0
        #: Seconds from sending each request to the model's first text (or call), newest last (benchmarks).
        self.first_piece_s: list[float] = []
        #: When (time.perf_counter) the latest piece of an answer came from the model.
        self.last_piece_at: float | None = None

    def __repr__(self) -> str:  # never show the key
        return f"LLMBrain(endpoint={self.endpoint!r}, model={self.model!r})"

    def _body(self, request: BrainRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": chat_messages(request), "stream": True}
        if request.max_output_tokens:
            body["max_tokens"] = int(request.max_output_tokens)
        return body | chat_tools(request)

    def _connection(self) -> tuple[http.client.HTTPConnection, str]:
        parts = urlsplit(self.endpoint)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=self.timeout,
                                               context=ssl.create_default_context()), path
        return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout), path

    async def stream(self, request: BrainRequest) -> AsyncIterator[str | ToolCall]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        finished = threading.Event()  # the model's answer was read to its end
        body = json.dumps(self._body(request)).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        connection, path = self._connection()
        sent_at = time.perf_counter()
        first: list[float] = []

        def put(kind: str, value: Any) -> None:
            if stop.is_set():  # cancelled: nothing more goes to the response
                return
            if kind in ("text", "call"):
                self.last_piece_at = time.perf_counter()
                if not first:
                    first.append(self.last_piece_at - sent_at)
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the loop is gone: nobody is listening any more
                stop.set()

        def worker() -> None:
            tool_calls = _ToolCallPieces()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                if response.status >= 400:
                    raise BrainError(f"The language model endpoint answered HTTP {response.status}: "
                                     f"{_error_message(response.read())}", "llm_http_error")
                if "text/event-stream" not in (response.getheader("Content-Type") or ""):
                    # A server that ignored `stream: true`: one JSON answer.
                    data = json.loads(response.read())
                    for choice in data.get("choices", []):
                        message = choice.get("message") or {}
                        if message.get("content"):
                            put("text", message["content"])
                        tool_calls.add(message.get("tool_calls"))
                else:
                    while not stop.is_set():
                        raw = response.readline()
                        if not raw:
                            break
                        line = raw.decode("utf-8", "replace").strip()
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        chunk = json.loads(data)
                        if isinstance(chunk, dict) and chunk.get("error"):
                            raise BrainError(f"The language model reported an error: {_error_message(data.encode())}", "llm_error")
                        for choice in chunk.get("choices", []):
                            delta = choice.get("delta") or {}
                            if delta.get("content"):
                                put("text", delta["content"])
                            tool_calls.add(delta.get("tool_calls"))
                if stop.is_set():
                    return
                finished.set()
                # The calls are complete only when the reply is: they go after the reply's words.
                for call in tool_calls.calls():
                    put("call", call)
            except BrainError as exc:
                put("error", exc)
            except TimeoutError:
                put("error", BrainError(f"The language model at {self.endpoint} did not answer within {self.timeout:g} s.", "llm_timeout"))
            except (ConnectionError, socket.gaierror, ssl.SSLError) as exc:
                put("error", BrainError(f"Cannot reach the language model at {self.endpoint}: {exc}", "llm_unreachable"))
            except Exception as exc:  # a malformed reply, or the stream shut down by a cancel
                put("error", BrainError(f"Unexpected reply from the language model: {type(exc).__name__}: {exc}", "llm_bad_response"))
            finally:
                connection.close()
                put("end", None)

        threading.Thread(target=worker, name="engine-llm", daemon=True).start()
        try:
            while True:
                kind, value = await queue.get()
                if kind in ("text", "call"):
                    yield value
                elif kind == "error":
                    log.warning("LLM request failed: %s", value)
                    raise value
                else:
                    return
        finally:
            if first:
                self.first_piece_s = (self.first_piece_s + first)[-1000:]
            if not finished.is_set():
                stop.set()
                self.closed_early += 1
                self._shut(connection)

    def _shut(self, connection: http.client.HTTPConnection) -> None:
        """Close the model's stream now, from the event loop's thread: a shut-down socket wakes the thread
        blocked reading it, and the server sees the connection go and stops generating."""
        sock = connection.sock
        if sock is None:  # not connected yet, or already closed by the worker
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError as exc:  # already gone
            log.debug("shutting the LLM stream down: %s", exc)
        log.info("stopped the language model's answer: its stream is closed")

    def apology(self, error: BrainError) -> str:
        return "Sorry, I couldn't get an answer from the language model. Please check that it is running."
