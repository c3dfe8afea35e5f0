"""Which realtime provider to talk to: the OpenAI Realtime API when a key is configured, else the embedded engine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_OPENAI_MODEL = "gpt-realtime"
#: Offered in Connection → Model (any other name can be typed there, or given with --model).
OPENAI_MODELS = ("gpt-realtime", "gpt-realtime-mini")
#: The settings key of the model chosen in Connection → Model (read at start when --model is not given).
MODEL_KEY = "openai.model"


#: Gemini Live's BidiGenerateContent WebSocket path (the `google-genai` SDK's, v1beta). The offline engine serves
#: it too, beside /v1/realtime, so the Gemini dialect runs end to end on this machine.
GEMINI_LIVE_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
GEMINI_LIVE_URL = "wss://generativelanguage.googleapis.com" + GEMINI_LIVE_PATH
DEFAULT_GEMINI_MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"

#: How a provider's key is sent: `Authorization: Bearer KEY` (OpenAI, compatible servers, the engine),
#: `api-key: KEY` (Azure OpenAI), `x-goog-api-key: KEY` (Gemini), or not at all.
AUTH_STYLES = ("bearer", "api-key", "x-goog-api-key", "none")


@dataclass(frozen=True)
class ProviderChoice:
    kind: str  # "openai" | "azure" | "gemini" | "compatible" | "engine" | "custom"
    label: str
    url: str | None  # None for the engine until it has started
    api_key: str | None = None
    model: str | None = None
    #: The wire protocol family: "openai" (OpenAI, Azure, compatible servers, the engine's /v1/realtime) or
    #: "gemini" (Gemini Live's BidiGenerateContent; the engine serves it too at GEMINI_LIVE_PATH).
    dialect: str = "openai"
    #: How the key goes on the wire (one of AUTH_STYLES).
    auth: str = "bearer"

    def __repr__(self) -> str:  # never print the key
        return (f"ProviderChoice(kind={self.kind!r}, label={self.label!r}, url={self.url!r}, model={self.model!r}, "
                f"dialect={self.dialect!r})")


def with_model(url: str, model: str | None) -> str:
    if not model:
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("model", model)
    return urlunsplit(parts._replace(query=urlencode(query)))


def switched_model(choice: ProviderChoice, model: str) -> ProviderChoice:
    """The same provider asking for another model (the URL's `model` parameter replaced). The engine has one."""
    model = model.strip()
    if choice.kind == "engine" or not model or choice.url is None:
        raise ValueError("Only the OpenAI Realtime API or a --url server can switch models.")
    parts = urlsplit(choice.url)
    query = dict(parse_qsl(parts.query))
    query["model"] = model
    url = urlunsplit(parts._replace(query=urlencode(query)))
    label = f"OpenAI {model}" if choice.kind == "openai" else choice.label
    return ProviderChoice(choice.kind, label, url, choice.api_key, model)


def choose_provider(
    api_key: str | None = None,
    model: str | None = None,
    url: str | None = None,
    force_engine: bool = False,
    environ: dict[str, str] | None = None,
) -> ProviderChoice:
    """`--url` wins; then an OpenAI key (argument, environment or keyring); otherwise the embedded engine."""
    env = os.environ if environ is None else environ
    key = api_key or env.get("OPENAI_API_KEY") or None
    if key is None and environ is None and not force_engine:
        from .secrets import keyring_key  # the key saved in Settings → API key (OS keyring)

        key = keyring_key()
    if force_engine:
        return ProviderChoice("engine", "offline engine", None)
    if url:
        host = urlsplit(url).hostname or url
        return ProviderChoice("custom", host, with_model(url, model or (DEFAULT_OPENAI_MODEL if key else None)), key, model)
    if key:
        m = model or DEFAULT_OPENAI_MODEL
        return ProviderChoice("openai", f"OpenAI {m}", with_model(OPENAI_REALTIME_URL, m), key, m)
    return ProviderChoice("engine", "offline engine", None)
