"""Which realtime provider to talk to: OpenAI, Azure OpenAI, Gemini Live, an OpenAI-compatible server, or the
embedded engine (`choose_provider`).

Each provider's key comes from its environment variable or from the OS keyring under its own name (`key_name`),
never from the settings file; the rest of what it needs (an Azure endpoint and deployment, a compatible server's
URL and auth style) comes from the environment or from the settings the Connection → Provider dialog wrote.
Without a provider asked for (`--provider`) or saved (Connection → Provider), it is OpenAI when its key is set,
else the engine, as before.
"""

from __future__ import annotations

import os
import logging
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_OPENAI_MODEL = "gpt-realtime"
#: Offered in Connection → Model (any other name can be typed there, or given with --model).
OPENAI_MODELS = ("gpt-realtime", "gpt-realtime-mini")
#: The settings key of the model chosen in Connection → Model (read at start when --model is not given).
MODEL_KEY = "openai.model"

log = logging.getLogger(__name__)

#: The providers Connection → Provider and `--provider` offer, in the menu's order.
PROVIDERS = ("openai", "azure", "gemini", "compatible", "engine")
PROVIDER_NAMES = {"openai": "OpenAI", "azure": "Azure OpenAI", "gemini": "Gemini Live",
                  "compatible": "OpenAI-compatible", "engine": "Offline engine"}
DIALECTS = ("openai", "gemini")

#: Settings keys (never a key: those live in the OS keyring, see `key_name`).
PROVIDER_KEY = "provider.kind"
AZURE_ENDPOINT_KEY = "provider.azure.endpoint"
AZURE_DEPLOYMENT_KEY = "provider.azure.deployment"
AZURE_API_VERSION_KEY = "provider.azure.api_version"
GEMINI_MODEL_KEY = "provider.gemini.model"
COMPATIBLE_URL_KEY = "provider.compatible.url"
COMPATIBLE_AUTH_KEY = "provider.compatible.auth"

#: Environment variables, by provider: (variables holding the key, first wins).
KEY_ENV = {
    "openai": ("OPENAI_API_KEY",),
    "azure": ("AZURE_OPENAI_API_KEY",),
    # As google-genai reads them: GOOGLE_API_KEY wins when both are set.
    "gemini": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "compatible": (),
    "engine": (),
}
AZURE_ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
AZURE_DEPLOYMENT_ENV = "AZURE_OPENAI_DEPLOYMENT"
AZURE_API_VERSION_ENV = "AZURE_OPENAI_API_VERSION"


#: Gemini Live's BidiGenerateContent WebSocket path, v1beta as Google's Live API reference gives it (the path the
#: `google-genai` SDK connects to with api_version "v1beta"; its default version is "v1"). The offline engine
#: serves it too, beside /v1/realtime, so the Gemini dialect runs end to end on this machine.
GEMINI_LIVE_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
GEMINI_LIVE_URL = "wss://generativelanguage.googleapis.com" + GEMINI_LIVE_PATH
from .core.provider_capabilities import DEFAULT_GEMINI_MODEL  # noqa: E402,F401  (one name, for the CLI and menus)

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
    return ProviderChoice(choice.kind, label, url, choice.api_key, model, choice.dialect, choice.auth)



class ProviderSetupError(ValueError):
    """A provider was asked for but something it needs is missing; the message says what, for the user."""

    def __init__(self, kind: str, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        #: What is missing, by name: "key", "endpoint", "deployment", "url".
        self.missing = missing


def key_name(kind: str, url: str | None = None) -> str:
    """The name a provider's key is kept under in the OS keyring (Parley's service). OpenAI keeps the name the
    API key dialog has always used; a compatible server's key is kept per server (host and port)."""
    if kind in ("openai", "custom"):
        from .secrets import USERNAME

        return USERNAME
    if kind == "azure":
        return "azure-openai"
    if kind == "gemini":
        return "gemini"
    if kind == "compatible":
        parts = urlsplit(url or "")
        host = parts.hostname or ""
        if not host:
            raise ValueError(f"{url!r} has no host to keep its key under")
        return f"compatible:{host}:{parts.port}" if parts.port else f"compatible:{host}"
    raise ValueError(f"the {kind} provider has no key")


def azure_base(endpoint: str) -> str:
    """`https://NAME.openai.azure.com` (or …cognitiveservices.azure.com, a proxy, or http:// for a local test) as
    the WebSocket origin `wss://NAME.openai.azure.com`. A pasted `/openai` or `/openai/v1` tail is dropped."""
    text = endpoint.strip()
    parts = urlsplit(text if "://" in text else "https://" + text)
    if parts.scheme not in ("https", "http", "wss", "ws") or not parts.hostname:
        raise ValueError(f"{endpoint!r} is not an Azure endpoint (https://NAME.openai.azure.com)")
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    for tail in ("/openai/v1", "/openai"):
        if path.endswith(tail):
            path = path[: -len(tail)]
            break
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def azure_realtime_url(endpoint: str, deployment: str, api_version: str | None = None) -> str:
    """Azure OpenAI's realtime WebSocket URL: the GA (v1) route `…/openai/v1/realtime?model=DEPLOYMENT`, or with
    an API version the preview route `…/openai/realtime?api-version=VERSION&deployment=DEPLOYMENT` (the shape
    `AsyncAzureOpenAI` connects to)."""
    base = azure_base(endpoint)
    if api_version:
        return f"{base}/openai/realtime?" + urlencode({"api-version": api_version, "deployment": deployment})
    return f"{base}/openai/v1/realtime?" + urlencode({"model": deployment})


def _setting(settings: Any, key: str) -> str | None:
    if settings is None:
        return None
    value = settings.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value or None


def _key(kind: str, env: Mapping[str, str], use_keyring: bool, url: str | None = None) -> str | None:
    for name in KEY_ENV.get(kind, ()):
        value = _env(env, name)
        if value:
            return value
    if not use_keyring:
        return None
    from .secrets import keyring_secret

    try:
        return keyring_secret(key_name(kind, url))
    except ValueError:
        return None


def _dialect_for(kind: str, dialect: str | None) -> str:
    if kind in ("engine", "compatible"):
        chosen = dialect or "openai"
        if chosen not in DIALECTS:
            raise ProviderSetupError(kind, f"Unknown dialect {chosen!r}: one of {', '.join(DIALECTS)}.")
        return chosen
    own = "gemini" if kind == "gemini" else "openai"
    if dialect and dialect != own:
        raise ProviderSetupError(kind, f"{PROVIDER_NAMES[kind]} speaks only its own dialect ({own}); --dialect is for "
                                       "the offline engine and OpenAI-compatible servers.")
    return own


def provider_choice(
    kind: str,
    *,
    api_key: str | None = None,
    model: str | None = None,
    url: str | None = None,
    dialect: str | None = None,
    environ: Mapping[str, str] | None = None,
    settings: Any = None,
    use_keyring: bool = True,
) -> ProviderChoice:
    """The ProviderChoice for one provider, from the arguments, the environment, the keyring and `settings`
    (anything with `.get(key)`). `url` (--url) replaces the provider's endpoint and keeps its dialect and auth
    style, so a test server can stand in for any of them. Raises ProviderSetupError when something it needs is
    missing."""
    env = os.environ if environ is None else environ
    if kind not in PROVIDERS:
        raise ProviderSetupError(kind, f"Unknown provider {kind!r}: one of {', '.join(PROVIDERS)}.")
    chosen_dialect = _dialect_for(kind, dialect)
    if kind == "engine":
        label = "offline engine" if chosen_dialect == "openai" else "offline engine (Gemini dialect)"
        if url:
            log.warning("--url is not used with the offline engine: it runs on this machine")
        return ProviderChoice("engine", label, None, dialect=chosen_dialect, auth="none")

    if kind == "openai":
        key = api_key or _key("openai", env, use_keyring)
        if not key and not url:
            raise ProviderSetupError("openai", "OpenAI needs an API key: set OPENAI_API_KEY, or enter it in "
                                               "Connection → Provider → OpenAI.", ("key",))
        m = model or _setting(settings, MODEL_KEY) or DEFAULT_OPENAI_MODEL
        return ProviderChoice("openai", f"OpenAI {m}", with_model(url or OPENAI_REALTIME_URL, m), key, m,
                              "openai", "bearer")

    if kind == "azure":
        key = api_key or _key("azure", env, use_keyring)
        endpoint = _env(env, AZURE_ENDPOINT_ENV) or _setting(settings, AZURE_ENDPOINT_KEY)
        deployment = model or _env(env, AZURE_DEPLOYMENT_ENV) or _setting(settings, AZURE_DEPLOYMENT_KEY)
        version = _env(env, AZURE_API_VERSION_ENV) or _setting(settings, AZURE_API_VERSION_KEY)
        missing = tuple(name for name, value in (("endpoint", endpoint or url), ("deployment", deployment),
                                                 ("key", key or url)) if not value)
        if missing:
            raise ProviderSetupError("azure", "Azure OpenAI needs " + ", ".join(
                {"endpoint": f"its endpoint ({AZURE_ENDPOINT_ENV}, https://NAME.openai.azure.com)",
                 "deployment": f"a deployment (--model or {AZURE_DEPLOYMENT_ENV})",
                 "key": "an API key (AZURE_OPENAI_API_KEY)"}[m] for m in missing)
                + "; or enter them in Connection → Provider → Azure OpenAI.", missing)
        assert deployment is not None
        if url:
            target = with_model(url, deployment)
        else:
            assert endpoint is not None
            try:
                target = azure_realtime_url(endpoint, deployment, version)
            except ValueError as exc:
                raise ProviderSetupError("azure", str(exc), ("endpoint",)) from None
        return ProviderChoice("azure", f"Azure OpenAI {deployment}", target, key, deployment, "openai", "api-key")

    if kind == "gemini":
        key = api_key or _key("gemini", env, use_keyring)
        if not key and not url:
            raise ProviderSetupError("gemini", "Gemini Live needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY), "
                                               "or enter it in Connection → Provider → Gemini Live.", ("key",))
        m = model or _setting(settings, GEMINI_MODEL_KEY) or DEFAULT_GEMINI_MODEL
        return ProviderChoice("gemini", f"Gemini Live {m}", url or GEMINI_LIVE_URL, key, m, "gemini", "x-goog-api-key")

    # compatible
    target = url or _setting(settings, COMPATIBLE_URL_KEY)
    if not target:
        raise ProviderSetupError("compatible", "An OpenAI-compatible server needs its WebSocket URL: --url, or "
                                               "Connection → Provider → OpenAI-compatible….", ("url",))
    if urlsplit(target).scheme not in ("ws", "wss") or not urlsplit(target).hostname:
        raise ProviderSetupError("compatible", f"{target!r} is not a ws:// or wss:// URL.", ("url",))
    auth = _setting(settings, COMPATIBLE_AUTH_KEY) or "bearer"
    if auth not in AUTH_STYLES:
        auth = "bearer"
    key = api_key or (_key("compatible", env, use_keyring, target) if auth != "none" else None)
    host = urlsplit(target).hostname or target
    if chosen_dialect == "openai":
        target = with_model(target, model)
    return ProviderChoice("compatible", host, target, key if auth != "none" else None, model, chosen_dialect, auth)


def choose_provider(
    api_key: str | None = None,
    model: str | None = None,
    url: str | None = None,
    force_engine: bool = False,
    environ: Mapping[str, str] | None = None,
    provider: str | None = None,
    dialect: str | None = None,
    settings: Any = None,
    use_keyring: bool | None = None,
) -> ProviderChoice:
    """The provider to start with: `provider` (--provider; `force_engine` is --offline) or the one saved in
    `settings` (Connection → Provider); else as always: `--url` as a "custom" server, OpenAI when its key is set
    (argument, OPENAI_API_KEY or keyring), otherwise the embedded engine.

    The keyring is read when `use_keyring` (default: only when `environ` is not given, so tests passing their own
    environment never see a developer's keys). A provider asked for that lacks something raises
    ProviderSetupError; a saved one falls back to the default choice, with a warning in the log."""
    env = os.environ if environ is None else environ
    keyring_ok = (environ is None) if use_keyring is None else use_keyring
    if force_engine:
        provider = "engine"
    asked = provider is not None
    kind = provider or _setting(settings, PROVIDER_KEY)
    if not asked and kind == "engine" and url:
        kind = None  # a saved choice of the engine, started with --url: that server, as without a saved choice
    if kind is not None:
        if not asked and kind not in PROVIDERS:
            log.warning("the saved provider %r is unknown; choosing as without one", kind)
        else:
            try:
                return provider_choice(kind, api_key=api_key, model=model, url=url, dialect=dialect, environ=env,
                                       settings=settings, use_keyring=keyring_ok and kind != "engine")
            except ProviderSetupError as exc:
                if asked:
                    raise
                log.warning("the saved provider (%s) cannot be used: %s Choosing as without one.", kind, exc)
    if dialect:
        raise ProviderSetupError("engine", "--dialect needs --provider engine or --provider compatible.")
    key = api_key or _env(env, "OPENAI_API_KEY")
    if key is None and keyring_ok:
        from .secrets import keyring_key  # the key saved in Connection → API key (OS keyring)

        key = keyring_key()
    saved_model = _setting(settings, MODEL_KEY)
    if url:
        host = urlsplit(url).hostname or url
        m = model or saved_model
        return ProviderChoice("custom", host, with_model(url, m or (DEFAULT_OPENAI_MODEL if key else None)), key, m)
    if key:
        m = model or saved_model or DEFAULT_OPENAI_MODEL
        return ProviderChoice("openai", f"OpenAI {m}", with_model(OPENAI_REALTIME_URL, m), key, m)
    return ProviderChoice("engine", "offline engine", None)
