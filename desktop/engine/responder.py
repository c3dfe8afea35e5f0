"""The offline engine's built-in brain: small, rule-based and honest about being offline."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field

_STORY = (
    "Once upon a time, in a valley between two quiet mountains, there lived a small dragon named Ember. "
    "Ember could not breathe fire like the other dragons; she could only make warm, glowing smoke. "
    "Every winter the villagers below shivered in their stone houses, and every winter Ember watched them from her cave. "
    "One cold night she flew down, curled around the village well, and breathed her gentle smoke over the roofs. "
    "By morning the frost had melted, the children were laughing, and the old baker left a loaf of bread at her feet. "
    "From then on, Ember was the valley's winter guardian, and nobody ever asked her for fire again."
)


_PERSONA = re.compile(r"(?i:\b(?:your name is|you are called|you're called|call yourself|you are|you're))\s+"
                      r"([A-Z][A-Za-z-]{1,30})\b(?!['’])")  # not "Parley's" (the default instructions)
_NOT_NAMES = {"The", "A", "An", "This", "That", "Not", "Now", "Here", "There", "Very", "Always", "Never", "In",
              "On", "At", "My", "Our", "Your", "Speaking", "Talking", "Helping", "Going", "Able", "Allowed", "To"}


def persona_name(instructions: str | None) -> str | None:
    """The assistant's name when the session's instructions give one ("You are Ada, ..."), else None.

    The rule-based responder cannot follow instructions, but it can answer to the name they give it, so a
    builder trying a persona offline hears the instructions arrive."""
    for match in _PERSONA.finditer(instructions or ""):
        if match.group(1) not in _NOT_NAMES:
            return match.group(1)
    return None


@dataclass
class Turn:
    role: str
    text: str


DEFAULT_NAME = "Parley's offline engine"
#: The rules' answer to anything they do not know: one short sentence (a local model answers for real:
#: Connection → Offline brain).
CANNOT_ANSWER = "I can only do small things offline: the time, the date, a story, or repeating after you."


@dataclass
class Responder:
    """Answers a user turn from its text. `name` is how it introduces itself."""

    name: str = DEFAULT_NAME
    history: list[Turn] = field(default_factory=list)

    def reply(self, user_text: str, now: _dt.datetime | None = None, images: list[str] | None = None) -> str:
        answer = self.answer(user_text, now, images)
        self.history.append(Turn("user", " ".join(user_text.split())))
        self.history.append(Turn("assistant", answer))
        return answer

    def answer(self, user_text: str, now: _dt.datetime | None = None, images: list[str] | None = None) -> str:
        """The answer to `user_text`, without recording the turn (so it can be prepared ahead)."""
        text = " ".join(user_text.split())
        low = text.lower()
        now = now or _dt.datetime.now()
        image_notes = [n for n in (images or []) if n]
        if image_notes:
            answer = " ".join(image_notes)
        elif not text:
            answer = "I didn't catch anything. Could you say that again?"
        elif m := re.search(r"\brepeat(?: after me)?[:,]?\s*(.+)", text, re.I):
            answer = f"You said: {m.group(1).strip(' .')}."
        elif re.search(r"\b(what time|the time)\b", low):
            answer = f"It is {now.strftime('%-I:%M %p')}."
        elif re.search(r"\b(date|what day|today's date)\b", low):
            answer = f"Today is {now.strftime('%A, %B %-d, %Y')}."
        elif re.search(r"\b(story|tell me about)\b", low):
            answer = _STORY
        elif re.search(r"\b(weather|news|search|look up|internet|stock)\b", low):
            answer = (
                f"I heard: {text.rstrip('.?!')}. I'm running offline, so I can't look that up. "
                "I can tell you the time, repeat what you say, or read the text in an image."
            )
        elif re.search(r"\b(hello|hi|hey|good (morning|afternoon|evening))\b", low):
            answer = f"Hello! I'm {self.name}. I can hear you and answer simple questions."
        elif re.search(r"\b(who are you|your name)\b", low):
            answer = f"I'm {self.name}: speech recognition, a small rule-based brain, and a synthetic voice, all on this computer."
            if self.name != DEFAULT_NAME:  # a persona from the instructions
                answer = (f"I'm {self.name}. Underneath, I'm {DEFAULT_NAME}: speech recognition, a small rule-based "
                          "brain, and a synthetic voice, all on this computer.")
        elif re.search(r"\b(thank|thanks)\b", low):
            answer = "You're welcome."
        else:
            answer = CANNOT_ANSWER
        return answer

    def idle_prompt(self) -> str:
        """What to say when the user has been silent for the session's idle timeout."""
        answer = "Are you still there? Take your time; I'm listening."
        self.history.append(Turn("assistant", answer))
        return answer
