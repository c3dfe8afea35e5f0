"""The engine's swappable brain: what the assistant says, as a stream of text.

A brain receives a `BrainRequest` (instructions plus the conversation as plain messages) and yields the
answer's text in pieces as it is produced. The connection cuts the stream into sentences
(`SentenceAssembler`) and speaks each sentence as soon as it is complete, so a streaming brain (an LLM)
is heard before it has finished writing.

- `RuleBrain` wraps the built-in `Responder` (offline, rule-based, instant).
- `desktop.engine.llm_brain.LLMBrain` forwards the conversation to an OpenAI-compatible
  chat-completions endpoint (`parley-engine --llm-url`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import AsyncIterator, Protocol

from .responder import DEFAULT_NAME, Responder, persona_name
from .speech.tts import _ABBREVIATIONS, _BOUNDARY, _LONG_SENTENCE, split_sentences


class BrainError(Exception):
    """The brain could not answer (e.g. the LLM endpoint failed). `code` goes into the failed response."""

    def __init__(self, message: str, code: str = "brain_error") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class ContextMessage:
    role: str  # "system" | "user" | "assistant"
    text: str
    #: The message's images as data URLs (for brains that can look at them).
    images: list[str] = field(default_factory=list)
    #: What the engine could tell about each image without a vision model (OCR text, size...).
    image_notes: list[str] = field(default_factory=list)


@dataclass
class BrainRequest:
    instructions: str
    messages: list[ContextMessage]
    #: The server VAD idle timeout fired: the user has said nothing; prompt them.
    idle: bool = False
    #: Soft cap on the answer length in tokens (None: no cap).
    max_output_tokens: int | None = None

    def last_user(self) -> ContextMessage | None:
        for message in reversed(self.messages):
            if message.role == "user":
                return message
        return None


class Brain(Protocol):
    name: str

    def stream(self, request: BrainRequest) -> AsyncIterator[str]:
        """The answer's text, in pieces. Raise `BrainError` for a failure the user should hear about."""
        ...

    def apology(self, error: BrainError) -> str:
        """What to say when `stream` failed."""
        ...


class RuleBrain:
    """The built-in offline responder as a brain: answers the last user message."""

    name = "built-in offline responder"

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder = responder or Responder()

    async def stream(self, request: BrainRequest) -> AsyncIterator[str]:
        self.responder.name = persona_name(request.instructions) or DEFAULT_NAME
        if request.idle:
            yield self.responder.idle_prompt()
            return
        last = request.last_user()
        if last is None:
            yield self.responder.reply("")
            return
        yield self.responder.reply(last.text, images=last.image_notes)

    def apology(self, error: BrainError) -> str:
        return "Sorry, something went wrong while I was answering."

    def first_sentence(self, user_text: str) -> str | None:
        """The first sentence this brain would say to `user_text` (to synthesize it ahead), if it can tell."""
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
