"""The engine's swappable brain: what the assistant says, as a stream of text, or which tool it calls.

A brain receives a `BrainRequest` (instructions, the conversation as plain messages, the function tools
and the tool choice) and yields the answer's text in pieces as it is produced, or `ToolCall`s: a model
decides itself whether to speak or to call one of the client's tools, so the decision lives here. The
connection turns each run of text into a message item and each call into a function_call item, in the
order they come. It cuts the text into sentences (`SentenceAssembler`) and speaks each sentence as soon
as it is complete, so a streaming brain (an LLM) is heard before it has finished writing.

- `RuleBrain` wraps the built-in `Responder` (offline, rule-based, instant).
- `desktop.engine.llm_brain.LLMBrain` forwards the conversation to an OpenAI-compatible
  chat-completions endpoint (`parley-engine --llm-url`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol

from .responder import DEFAULT_NAME, Responder, persona_name
from .speech.tts import _ABBREVIATIONS, _BOUNDARY, _LONG_SENTENCE, split_sentences
from .tool_calls import arguments_json, choose_tool, describe_output, extract_arguments


class BrainError(Exception):
    """The brain could not answer (e.g. the LLM endpoint failed). `code` goes into the failed response."""

    def __init__(self, message: str, code: str = "brain_error") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ToolCall:
    """A call of one of the request's function tools, instead of (or after) words."""

    name: str
    #: The arguments as JSON text, as a model writes them.
    arguments: str
    #: Set by the engine when the call becomes a conversation item; in a request's context, the call's id.
    call_id: str = ""


@dataclass
class ContextMessage:
    #: "system" | "user" | "assistant" | "tool" (a function call's output, sent back by the client).
    role: str
    #: The message's text or transcript; for "tool", the output as the client sent it.
    text: str
    #: The message's images as data URLs (for brains that can look at them).
    images: list[str] = field(default_factory=list)
    #: What the engine could tell about each image without a vision model (OCR text, size...).
    image_notes: list[str] = field(default_factory=list)
    #: role "assistant": the function call this item is (its text is empty). role "tool": the call this
    #: output answers (name "" when the conversation does not hold a call with that call_id).
    call: ToolCall | None = None


@dataclass
class BrainRequest:
    instructions: str
    messages: list[ContextMessage]
    #: The server VAD idle timeout fired: the user has said nothing; prompt them.
    idle: bool = False
    #: Soft cap on the answer length in tokens (None: no cap).
    max_output_tokens: int | None = None
    #: The function tools the brain may call (session or response `tools`, as checked by tool_calls).
    tools: list[dict[str, Any]] = field(default_factory=list)
    #: "auto" | "none" | "required" | {"type": "function", "name": ...}
    tool_choice: str | dict[str, Any] = "auto"

    def last_user(self) -> ContextMessage | None:
        for message in reversed(self.messages):
            if message.role == "user":
                return message
        return None

    def tool_outputs(self) -> list[ContextMessage]:
        """The function outputs at the end of the context (after the last user or assistant words): what a
        response now has to talk about. Empty when the last thing said was the user's or the assistant's."""
        outputs: list[ContextMessage] = []
        for message in reversed(self.messages):
            if message.role == "tool":
                outputs.append(message)
            elif message.role == "system" or (message.role == "assistant" and message.call is not None):
                continue
            else:
                break
        return outputs[::-1]


class Brain(Protocol):
    name: str

    def stream(self, request: BrainRequest) -> AsyncIterator[str | ToolCall]:
        """The answer's text in pieces, and/or calls of the request's tools, in the order the brain decides
        them. Raise `BrainError` for a failure the user should hear about."""
        ...

    def apology(self, error: BrainError) -> str:
        """What to say when `stream` failed."""
        ...


class RuleBrain:
    """The built-in offline responder as a brain: answers the last user message, or calls a tool.

    Tools follow the toy rules of `tool_calls` (no model here): a user turn that mentions a tool's words is
    answered by calling it (always with tool_choice "required" or a named choice, never with "none"), and
    function outputs at the end of the context are spoken back ("get weather says: temperature 18, ...").
    Unlike a model under "required", it speaks the outputs instead of calling again, so a flow can end."""

    name = "built-in offline responder"

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder = responder or Responder()

    async def stream(self, request: BrainRequest) -> AsyncIterator[str | ToolCall]:
        self.responder.name = persona_name(request.instructions) or DEFAULT_NAME
        if request.idle:
            yield self.responder.idle_prompt()
            return
        outputs = request.tool_outputs()
        if outputs:
            yield " ".join(describe_output(o.call.name if o.call else "", o.text) for o in outputs)
            return
        last = request.last_user()
        text = last.text if last is not None else ""
        tool = self._tool_for(request, text)
        if tool is not None:
            yield ToolCall(name=tool["name"], arguments=arguments_json(extract_arguments(tool, text)))
            return
        if last is None:
            yield self.responder.reply("")
            return
        yield self.responder.reply(last.text, images=last.image_notes)

    @staticmethod
    def _tool_for(request: BrainRequest, text: str) -> dict[str, Any] | None:
        """The tool to call when the response answers a user turn (the context ends with the user's words)."""
        last = next((m for m in reversed(request.messages) if m.role != "system"), None)
        if last is None or last.role != "user":
            return None
        return choose_tool(request.tools, request.tool_choice, text)

    def apology(self, error: BrainError) -> str:
        return "Sorry, something went wrong while I was answering."

    def first_sentence(self, user_text: str, tools: list[dict[str, Any]] | None = None,
                       tool_choice: str | dict[str, Any] = "auto") -> str | None:
        """The first sentence this brain would say to `user_text` (to synthesize it ahead), if it can tell:
        None when it would call a tool instead."""
        if choose_tool(tools or [], tool_choice, user_text) is not None:
            return None
        sentences = split_sentences(self.responder.answer(user_text))
        return sentences[0] if sentences else None


def _is_abbreviation_end(head: str) -> bool:
    """True when `head` ends with "Dr." / "J." and so is not a sentence end (same rule as split_sentences)."""
    last_word = re.findall(r"([A-Za-z][A-Za-z.]*)\.[\"'”’)\]]*$", head.rstrip())
    if not last_word:
        return False
    word = last_word[0].lower().rstrip(".")
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


class SentenceAssembler:
    """Cuts a stream of text pieces into sentences as soon as each one is certainly complete.

    A sentence is complete when its end punctuation is followed by whitespace (so "3.5" and "e.g." inside
    a sentence do not end it), at a paragraph break, or when it grows longer than the synthesizer's
    clause limit. `flush()` returns what is left at the end of the stream.
    """

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        out: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                break
            head, self._buffer = self._buffer[:cut], self._buffer[cut:]
            out.extend(split_sentences(head))
        return out

    def _next_cut(self) -> int | None:
        text = self._buffer
        para = re.search(r"\n\s*\n", text)
        for m in _BOUNDARY.finditer(text):
            if para is not None and para.start() < m.start():
                break
            head = text[: m.end()].rstrip()
            if m.group(0).lstrip()[:1] == "." and _is_abbreviation_end(head):
                continue
            return m.end()
        if para is not None:
            return para.end()
        if len(text) > _LONG_SENTENCE:
            clause = [m.end() for m in re.finditer(r"[,;:]\s+", text[:_LONG_SENTENCE])]
            if clause:
                return clause[-1]
            space = text.rfind(" ", 0, _LONG_SENTENCE)
            return space + 1 if space > 0 else None
        return None

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return split_sentences(rest)
