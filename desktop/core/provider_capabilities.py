"""What a provider's realtime API can and cannot do, as one record the core and the UI read.

The barge-in and turn-taking decisions are the same for every provider; what differs is whether the server can
be told about them (truncate an answer to what was heard, delete an item, cancel a response), which turn-detection
knobs it has and what they mean there, its audio rates, and how long a session may last. The UI disables what a
provider lacks and says why, instead of sending something that would be ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .agent_settings import OPENAI_VOICES
from .session_config import VAD_PROFILES, ServerVad

DEFAULT_GEMINI_MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"
#: Gemini Live's prebuilt voices (speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName).
GEMINI_VOICES = (
    "Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr", "Achernar", "Achird", "Algenib",
    "Algieba", "Alnilam", "Autonoe", "Callirrhoe", "Despina", "Enceladus", "Erinome", "Gacrux", "Iapetus",
    "Laomedeia", "Pulcherrima", "Rasalgethi", "Sadachbia", "Sadaltager", "Schedar", "Sulafat", "Umbriel",
    "Vindemiatrix", "Zubenelgenubi",
)


@dataclass(frozen=True)
class Knob:
    """One turn-detection setting as a provider offers it: `offered` False disables it with `reason`; `meaning`
    names what it does there when that differs from OpenAI's (shown as the control's tooltip)."""

    offered: bool = True
    meaning: str = ""
    reason: str = ""
    #: The control's label on this provider, when it does something else than OpenAI's knob of that name.
    label: str = ""


@dataclass(frozen=True)
class ProviderCapabilities:
    name: str
    #: `conversation.item.truncate`: the model's context is cut to what the user heard.
    can_truncate: bool = True
    #: `conversation.item.delete` (Delete in the transcript, "Answer again" replacing the old answer).
    can_delete_items: bool = True
    #: `response.cancel`: the server stops generating when the user interrupts.
    can_cancel: bool = True
    #: The server sends speech started / stopped with positions on the input clock.
    speech_boundaries: bool = True
    #: Session settings (turn detection, instructions, tools) change on a live session; False: at the next one.
    live_session_update: bool = True
    #: The voice can change before the session first speaks (OpenAI) or only at setup (False).
    voice_change_before_speaking: bool = True
    #: Semantic (meaning-based) server turn detection.
    semantic_vad: bool = True
    #: The server sends the input's transcription.
    input_transcription: bool = True
    input_rate: int = 24_000
    output_rate: int = 24_000
    image_input: bool = True
    #: The server hands out handles that carry a session's context into a new connection.
    resumption: bool = False
    #: How long one session may last (None: no known limit).
    session_limit_s: float | None = None
    #: Server VAD knobs by Parley's name: threshold, prefix_padding_ms, silence_duration_ms, eagerness,
    #: interrupt_response, idle_timeout_ms.
    knobs: dict[str, Knob] = field(default_factory=dict)
    #: The turn-detection profiles (fast / balanced / patient / noisy) as this provider's settings.
    profiles: dict[str, ServerVad] = field(default_factory=lambda: dict(VAD_PROFILES))
    #: Voices the provider offers (empty: any name may be typed).
    voices: tuple[str, ...] = ()

    def knob(self, name: str) -> Knob:
        return self.knobs.get(name, Knob())

    def matching_profile(self, threshold: float, prefix_padding_ms: int, silence_duration_ms: int) -> str:
        """The name of this provider's profile with these values, or "custom"."""
        for name, p in self.profiles.items():
            if (abs(p.threshold - threshold) < 1e-6 and p.prefix_padding_ms == prefix_padding_ms
                    and p.silence_duration_ms == silence_duration_ms):
                return name
        return "custom"

    def not_offered(self) -> list[str]:
        """Plain words for each thing this provider cannot do, for the transcript and the status tooltip."""
        words = []
        if not self.can_truncate:
            words.append("truncating an interrupted answer (the model keeps all of it in its context)")
        if not self.can_delete_items:
            words.append("deleting turns from the model's context")
        if not self.can_cancel:
            words.append("cancelling an answer on the server (Parley stops playing it)")
        if not self.live_session_update:
            words.append("changing session settings mid-session (they apply to the next session)")
        return words


OPENAI = ProviderCapabilities(
    name="OpenAI Realtime",
    voices=OPENAI_VOICES,
    session_limit_s=60 * 60,
    knobs={
        "threshold": Knob(meaning="How loud and speech-like audio must be to count as speech (0–1)."),
        "prefix_padding_ms": Knob(meaning="Audio kept from before the detected start of speech."),
        "silence_duration_ms": Knob(meaning="Silence that ends your turn."),
        "eagerness": Knob(meaning="Semantic VAD: how soon the model decides you have finished."),
        "interrupt_response": Knob(meaning="Your speech cancels the answer being spoken."),
        "idle_timeout_ms": Knob(meaning="After this much silence the assistant prompts you."),
    },
)

#: Azure OpenAI serves the same models and events as OpenAI; its limits are the resource's.
AZURE = ProviderCapabilities(name="Azure OpenAI", session_limit_s=30 * 60, knobs=OPENAI.knobs, voices=OPENAI_VOICES)

#: A server that speaks the OpenAI Realtime protocol (xAI, vLLM-style servers, the offline engine).
COMPATIBLE = ProviderCapabilities(name="OpenAI-compatible", knobs=OPENAI.knobs)

ENGINE = ProviderCapabilities(name="Offline engine", knobs=OPENAI.knobs)

_GEMINI_NO = "Gemini Live has no such setting."
GEMINI = ProviderCapabilities(
    name="Gemini Live",
    can_truncate=False,
    can_delete_items=False,
    can_cancel=False,
    speech_boundaries=False,
    live_session_update=False,
    voice_change_before_speaking=False,
    semantic_vad=False,
    input_rate=16_000,
    output_rate=24_000,
    resumption=True,
    # Audio-only sessions end after 15 minutes without context window compression; with it (Parley turns it on)
    # the connection itself still lasts about 10 minutes and is carried over by resumption (goAway first).
    session_limit_s=10 * 60,
    knobs={
        "threshold": Knob(label="Start sensitivity", meaning="Start-of-speech sensitivity, which has two levels, not a number: below 0.6 is "
                                  "HIGH (speech starts on less; shown as 0.5), 0.6 and above is LOW (it needs "
                                  "clearer speech; shown as 0.7)."),
        "prefix_padding_ms": Knob(label="Speech debounce", meaning="How long speech must last before Gemini counts it as started "
                                          "(a debounce), not audio kept from before the start."),
        "silence_duration_ms": Knob(meaning="Silence that ends your turn; 400 ms or less also sets the "
                                            "end-of-speech sensitivity HIGH (ends on shorter pauses), more sets LOW."),
        "eagerness": Knob(offered=False, reason="Gemini Live has no semantic turn detection; its end-of-speech "
                                                "sensitivity is set from the profile instead."),
        "interrupt_response": Knob(label="Speech interrupts the answer (activityHandling)", meaning="activityHandling: your speech interrupts the answer "
                                           "(START_OF_ACTIVITY_INTERRUPTS) or not (NO_INTERRUPTION)."),
        "idle_timeout_ms": Knob(offered=False, reason=_GEMINI_NO),
    },
    # Gemini's prefix padding is a debounce: short, or the start of every turn is late by that much.
    profiles={
        "fast": ServerVad(threshold=0.5, prefix_padding_ms=20, silence_duration_ms=300),
        "balanced": ServerVad(threshold=0.5, prefix_padding_ms=40, silence_duration_ms=500),
        "patient": ServerVad(threshold=0.5, prefix_padding_ms=60, silence_duration_ms=800),
        "noisy": ServerVad(threshold=0.7, prefix_padding_ms=120, silence_duration_ms=600),
    },
    voices=GEMINI_VOICES,
)


def capabilities_for(kind: str, dialect: str = "openai") -> ProviderCapabilities:
    """The record for a provider kind (providers.ProviderChoice.kind) speaking `dialect`."""
    if dialect == "gemini":
        return GEMINI if kind != "engine" else ENGINE_AS_GEMINI
    return {"openai": OPENAI, "azure": AZURE, "engine": ENGINE}.get(kind, COMPATIBLE)


#: The offline engine speaking Gemini's dialect offers what Gemini offers (the same adapter, the same limits),
#: without a session time limit.
ENGINE_AS_GEMINI = ProviderCapabilities(**{**GEMINI.__dict__, "name": "Offline engine (Gemini dialect)",
                                           "session_limit_s": None, "voices": ()})
