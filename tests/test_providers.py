"""Choosing a provider: OpenAI, Azure OpenAI, Gemini Live, an OpenAI-compatible server or the offline engine, from
the environment, the keyring and the settings; what goes on the wire matches what the vendors' own SDKs send (a
recording WebSocket server on 127.0.0.1 sees both); keys stay out of settings files and logs."""

from __future__ import annotations

import asyncio
import http
import json
import logging
import os
import shutil
import ssl
import subprocess
import sys
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import keyring
import pytest
import websockets.asyncio.server

from desktop import secrets
from desktop.providers import (
    AZURE_DEPLOYMENT_KEY,
    AZURE_ENDPOINT_KEY,
    COMPATIBLE_AUTH_KEY,
    COMPATIBLE_URL_KEY,
    DEFAULT_GEMINI_MODEL,
    GEMINI_LIVE_PATH,
    GEMINI_LIVE_URL,
    MODEL_KEY,
    PROVIDER_KEY,
    ProviderSetupError,
    azure_realtime_url,
    choose_provider,
    key_name,
    provider_choice,
)
from desktop.settings import Settings
from desktop.transport.websocket_transport import ConnectError, Endpoint, WebSocketTransport
from tests.conftest import ROOT

OPENAI_KEY = "sk-test-" + "Qo4" * 12
AZURE_KEY = "az" + "7f3e" * 8
GEMINI_KEY = "AIzaSy" + "Gm5" * 11
COMPAT_KEY = "compat-" + "Rk2" * 8
AZURE_ENV = {"AZURE_OPENAI_API_KEY": AZURE_KEY, "AZURE_OPENAI_ENDPOINT": "https://parley-res.openai.azure.com/",
             "AZURE_OPENAI_DEPLOYMENT": "gpt-realtime-dep"}


# ---------------------------------------------------------------------- from the environment
def test_each_provider_from_its_environment_variables():
    openai = choose_provider(environ={"OPENAI_API_KEY": OPENAI_KEY}, provider="openai", model="gpt-realtime-mini")
    assert (openai.kind, openai.url, openai.api_key, openai.auth, openai.dialect) == (
        "openai", "wss://api.openai.com/v1/realtime?model=gpt-realtime-mini", OPENAI_KEY, "bearer", "openai")

    azure = choose_provider(environ=AZURE_ENV, provider="azure")
    assert azure.url == "wss://parley-res.openai.azure.com/openai/v1/realtime?model=gpt-realtime-dep"
    assert (azure.api_key, azure.auth, azure.dialect, azure.model) == (AZURE_KEY, "api-key", "openai", "gpt-realtime-dep")
    assert choose_provider(environ=AZURE_ENV, provider="azure", model="other-dep").model == "other-dep"  # --model wins
    preview = choose_provider(environ={**AZURE_ENV, "AZURE_OPENAI_ENDPOINT": "https://parley.cognitiveservices.azure.com",
                                       "AZURE_OPENAI_API_VERSION": "2025-04-01-preview"}, provider="azure")
    assert preview.url == ("wss://parley.cognitiveservices.azure.com/openai/realtime"
                           "?api-version=2025-04-01-preview&deployment=gpt-realtime-dep")

    gemini = choose_provider(environ={"GEMINI_API_KEY": GEMINI_KEY}, provider="gemini")
    assert (gemini.url, gemini.api_key, gemini.auth, gemini.dialect, gemini.model) == (
        GEMINI_LIVE_URL, GEMINI_KEY, "x-goog-api-key", "gemini", DEFAULT_GEMINI_MODEL)
    # As google-genai reads them: GOOGLE_API_KEY wins over GEMINI_API_KEY.
    assert choose_provider(environ={"GEMINI_API_KEY": GEMINI_KEY, "GOOGLE_API_KEY": "AIza-google-" + "x" * 20},
                           provider="gemini").api_key == "AIza-google-" + "x" * 20

    engine = choose_provider(environ={"OPENAI_API_KEY": OPENAI_KEY}, provider="engine")
    assert (engine.kind, engine.url, engine.api_key, engine.dialect) == ("engine", None, None, "openai")
    assert choose_provider(environ={}, provider="engine", dialect="gemini").dialect == "gemini"
    assert choose_provider(environ={"OPENAI_API_KEY": OPENAI_KEY}, force_engine=True).kind == "engine"  # --offline

    compatible = choose_provider(environ={}, provider="compatible", url="wss://voice.example.net/v1/realtime",
                                 dialect="gemini")
    assert (compatible.kind, compatible.label, compatible.auth, compatible.dialect) == (
        "compatible", "voice.example.net", "bearer", "gemini")


def test_without_a_provider_it_is_as_before():
    assert choose_provider(environ={}).kind == "engine"
    openai = choose_provider(environ={"OPENAI_API_KEY": OPENAI_KEY})
    assert openai.kind == "openai" and openai.api_key == OPENAI_KEY
    custom = choose_provider(environ={}, url="ws://127.0.0.1:9/v1/realtime")
    assert (custom.kind, custom.url) == ("custom", "ws://127.0.0.1:9/v1/realtime")
    # Other providers' variables alone choose nothing.
    assert choose_provider(environ={**AZURE_ENV, "GEMINI_API_KEY": GEMINI_KEY}).kind == "engine"


def test_a_saved_choice_is_used_and_an_unusable_one_falls_back(tmp_path, caplog):
    settings = Settings(tmp_path / "settings.json")
    settings.set(PROVIDER_KEY, "gemini")
    assert choose_provider(environ={"GEMINI_API_KEY": GEMINI_KEY}, settings=settings).kind == "gemini"
    with caplog.at_level(logging.WARNING, logger="desktop.providers"):
        fallback = choose_provider(environ={"OPENAI_API_KEY": OPENAI_KEY}, settings=settings)  # no Gemini key now
    assert fallback.kind == "openai" and "saved provider (gemini) cannot be used" in caplog.text
    settings.set(PROVIDER_KEY, "engine")
    assert choose_provider(environ={"OPENAI_API_KEY": OPENAI_KEY}, settings=settings).kind == "engine"
    # --url with a saved engine: that server (there is no engine address to replace).
    assert choose_provider(environ={}, settings=settings, url="ws://127.0.0.1:9/v1/realtime").kind == "custom"
    # --provider wins over the saved choice; the saved OpenAI model is OpenAI's only.
    settings.set(MODEL_KEY, "gpt-realtime-mini")
    assert choose_provider(environ={"OPENAI_API_KEY": OPENAI_KEY}, settings=settings, provider="openai").model == "gpt-realtime-mini"
    assert choose_provider(environ=AZURE_ENV, settings=settings, provider="azure").model == "gpt-realtime-dep"


def test_what_is_missing_is_said():
    with pytest.raises(ProviderSetupError) as info:
        choose_provider(environ={"AZURE_OPENAI_API_KEY": AZURE_KEY}, provider="azure")
    assert info.value.missing == ("endpoint", "deployment") and "AZURE_OPENAI_ENDPOINT" in str(info.value)
    with pytest.raises(ProviderSetupError, match="GEMINI_API_KEY") as info:
        choose_provider(environ={}, provider="gemini")
    assert info.value.missing == ("key",)
    with pytest.raises(ProviderSetupError, match="WebSocket URL"):
        choose_provider(environ={}, provider="compatible")
    with pytest.raises(ProviderSetupError, match="own dialect"):
        choose_provider(environ={"GEMINI_API_KEY": GEMINI_KEY}, provider="gemini", dialect="openai")
    with pytest.raises(ProviderSetupError, match="not an Azure endpoint"):
        choose_provider(environ={**AZURE_ENV, "AZURE_OPENAI_ENDPOINT": "ftp://x"}, provider="azure")


def test_url_overrides_the_endpoint_and_keeps_dialect_and_auth():
    url = "ws://127.0.0.1:8765/somewhere"
    for kind, environ, dialect, auth in (
        ("openai", {"OPENAI_API_KEY": OPENAI_KEY}, "openai", "bearer"),
        ("azure", AZURE_ENV, "openai", "api-key"),
        ("gemini", {"GEMINI_API_KEY": GEMINI_KEY}, "gemini", "x-goog-api-key"),
    ):
        choice = choose_provider(environ=environ, provider=kind, url=url)
        assert (choice.kind, choice.dialect, choice.auth) == (kind, dialect, auth), kind
        assert choice.url.startswith(url) and choice.api_key == environ[next(iter(environ))]
    assert choose_provider(environ={"GEMINI_API_KEY": GEMINI_KEY}, provider="gemini", url=url).url == url
    # A stand-in server needs no endpoint nor key of the provider's own.
    assert choose_provider(environ={}, provider="azure", model="dep", url=url).url == url + "?model=dep"
    settings = {COMPATIBLE_URL_KEY: "wss://saved.example/v1/realtime", COMPATIBLE_AUTH_KEY: "api-key"}
    compatible = choose_provider(environ={}, provider="compatible", settings=settings, url=url)
    assert (compatible.url, compatible.auth) == (url, "api-key")


def test_keyring_names_are_per_provider():
    assert key_name("openai") == secrets.USERNAME  # the name Connection → API key has always used
    assert key_name("azure") == "azure-openai" and key_name("gemini") == "gemini"
    assert key_name("compatible", "wss://voice.example.net/v1/realtime") == "compatible:voice.example.net"
    assert key_name("compatible", "ws://127.0.0.1:9000/v1/realtime") == "compatible:127.0.0.1:9000"


# ---------------------------------------------------------------------- against the SDKs, on the wire
class Recorder:
    """A WebSocket server on 127.0.0.1 that records each handshake (path and headers) and refuses it (401)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.server = None

    async def __aenter__(self) -> "Recorder":
        def record(connection, request):
            self.requests.append((request.path, {k.lower(): v for k, v in request.headers.raw_items()}))
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "recorded\n")

        async def handler(ws):  # never reached: every handshake is refused
            await ws.close()

        self.server = await websockets.asyncio.server.serve(handler, "127.0.0.1", 0, ssl=self.tls,
                                                            process_request=record)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"


@pytest.fixture
def tls_for_127(tmp_path, monkeypatch) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1, trusted (SSL_CERT_FILE) by every client in this process: the SDKs
    and Parley reach the recorder by wss:// exactly as they would the cloud."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def _parley_handshake(choice) -> None:
    transport = WebSocketTransport(Endpoint(choice.url, choice.label, choice.api_key, auth=choice.auth),
                                   lambda text: None, lambda reason: None)
    with pytest.raises(ConnectError, match="refused the API key"):
        await transport.connect(timeout=5)


def _auth(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k in ("authorization", "api-key", "x-goog-api-key")}


def _split(path: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(path)
    return parts.path, sorted(parse_qsl(parts.query))


def test_azure_urls_and_headers_match_the_openai_sdk(tls_for_127, caplog):
    from openai import AsyncAzureOpenAI, AsyncOpenAI

    async def scenario():
        async with Recorder(tls_for_127) as server:
            env = {"AZURE_OPENAI_API_KEY": AZURE_KEY, "AZURE_OPENAI_ENDPOINT": server.origin,
                   "AZURE_OPENAI_DEPLOYMENT": "parley-realtime"}
            # The preview route: what AsyncAzureOpenAI connects to with an api_version.
            sdk = AsyncAzureOpenAI(azure_endpoint=server.origin, api_version="2025-04-01-preview", api_key=AZURE_KEY)
            with pytest.raises(Exception):
                async with sdk.realtime.connect(model="parley-realtime"):
                    pass
            await _parley_handshake(choose_provider(environ={**env, "AZURE_OPENAI_API_VERSION": "2025-04-01-preview"},
                                                    provider="azure"))
            # The same with the deployment given to the client instead of as the model.
            sdk_dep = AsyncAzureOpenAI(azure_endpoint=server.origin, azure_deployment="parley-realtime",
                                       api_version="2025-04-01-preview", api_key=AZURE_KEY)
            with pytest.raises(Exception):
                async with sdk_dep.realtime.connect(model="parley-realtime"):
                    pass
            # The GA route: the OpenAI client on the resource's /openai/v1 base, as Azure documents it.
            ga = AsyncOpenAI(api_key=AZURE_KEY, websocket_base_url=f"wss://127.0.0.1:{server.port}/openai/v1")
            with pytest.raises(Exception):
                async with ga.realtime.connect(model="parley-realtime"):
                    pass
            with caplog.at_level(logging.DEBUG, logger="desktop"):
                await _parley_handshake(choose_provider(environ=env, provider="azure"))
            return server.requests

    (sdk_path, sdk_headers), (parley_path, parley_headers), (sdk_dep_path, _), (ga_path, ga_headers), \
        (parley_ga_path, parley_ga_headers) = asyncio.run(scenario())
    assert _split(parley_path) == _split(sdk_path) == _split(sdk_dep_path) == (
        "/openai/realtime", [("api-version", "2025-04-01-preview"), ("deployment", "parley-realtime")])
    assert _auth(parley_headers) == _auth(sdk_headers) == {"api-key": AZURE_KEY}
    assert _split(parley_ga_path) == _split(ga_path) == ("/openai/v1/realtime", [("model", "parley-realtime")])
    # On the GA route the OpenAI client sends the key as a bearer token; Azure takes it in `api-key` there as on
    # the preview route, which is the header its own client (AsyncAzureOpenAI) uses, and Parley's.
    assert _auth(ga_headers) == {"authorization": f"Bearer {AZURE_KEY}"}
    assert _auth(parley_ga_headers) == {"api-key": AZURE_KEY}
    assert AZURE_KEY not in caplog.text


def test_azure_url_shape_matches_the_sdk_for_real_hostnames():
    """The SDK's own URL builder (no network), for both Azure host names."""
    from openai import AsyncAzureOpenAI

    for endpoint in ("https://parley-res.openai.azure.com", "https://parley-res.cognitiveservices.azure.com/"):
        sdk = AsyncAzureOpenAI(azure_endpoint=endpoint, api_version="2024-10-01-preview", api_key=AZURE_KEY)
        url, headers = asyncio.run(sdk._configure_realtime("dep-1", {}))
        ours = azure_realtime_url(endpoint, "dep-1", "2024-10-01-preview")
        assert _whole(str(url)) == _whole(ours) == ("wss", "parley-res." + endpoint.split(".", 1)[1].rstrip("/"),
                                                    "/openai/realtime",
                                                    [("api-version", "2024-10-01-preview"), ("deployment", "dep-1")])
        assert headers == {"api-key": AZURE_KEY}


def _whole(url: str) -> tuple[str, str, str, list[tuple[str, str]]]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path, sorted(parse_qsl(parts.query))


def test_gemini_url_and_header_match_google_genai(tls_for_127, caplog):
    from google import genai
    from google.genai import types

    default = genai.Client(api_key=GEMINI_KEY)
    assert default._api_client._websocket_base_url().rstrip("/") + GEMINI_LIVE_PATH == GEMINI_LIVE_URL

    async def scenario():
        async with Recorder(tls_for_127) as server:
            # v1beta, the version Google's Live API reference gives; and the SDK's own default version.
            for version in ("v1beta", None):
                client = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=server.origin,
                                                                                         api_version=version))
                with pytest.raises(Exception):
                    async with client.aio.live.connect(model=DEFAULT_GEMINI_MODEL,
                                                       config=types.LiveConnectConfig(response_modalities=["AUDIO"])):
                        pass
            # Parley's own choice, with Google's host swapped for the recorder's.
            choice = choose_provider(environ={"GEMINI_API_KEY": GEMINI_KEY}, provider="gemini")
            parts = urlsplit(choice.url)
            here = choice.__class__(**{**choice.__dict__, "url": urlunsplit(parts._replace(netloc=f"127.0.0.1:{server.port}"))})
            with caplog.at_level(logging.DEBUG, logger="desktop"):
                await _parley_handshake(here)
            return server.requests

    (sdk_path, sdk_headers), (default_path, _), (parley_path, parley_headers) = asyncio.run(scenario())
    assert urlsplit(sdk_path).path == parley_path == GEMINI_LIVE_PATH
    # The SDK's own default differs only in the version segment (v1).
    assert urlsplit(default_path).path == GEMINI_LIVE_PATH.replace(".v1beta.", f".{genai.Client(api_key=GEMINI_KEY)._api_client._http_options.api_version}.")
    assert _auth(parley_headers) == _auth(sdk_headers) == {"x-goog-api-key": GEMINI_KEY}
    assert GEMINI_KEY not in caplog.text


# ---------------------------------------------------------------------- keys in a real keyring
@pytest.fixture
def real_keyring(session_bus):
    import keyring.backends.SecretService

    keyring.set_keyring(keyring.backends.SecretService.Keyring())
    secrets._keyring()  # Parley's own Secret Service backend takes over
    names = [secrets.USERNAME, "azure-openai", "gemini", "compatible:127.0.0.1:8765"]
    yield names
    for name in names:
        try:
            keyring.delete_password(secrets.SERVICE, name)
        except keyring.errors.PasswordDeleteError:
            pass


def test_each_providers_key_from_the_keyring_under_its_own_name(real_keyring, tmp_path, caplog):
    secrets.store_api_key(OPENAI_KEY)
    secrets.store_secret(key_name("azure"), AZURE_KEY)
    secrets.store_secret(key_name("gemini"), GEMINI_KEY)
    secrets.store_secret(key_name("compatible", "ws://127.0.0.1:8765/v1/realtime"), COMPAT_KEY)
    settings = Settings(tmp_path / "settings.json")
    settings.set(AZURE_ENDPOINT_KEY, "https://parley-res.openai.azure.com")
    settings.set(AZURE_DEPLOYMENT_KEY, "gpt-realtime")
    settings.set(COMPATIBLE_URL_KEY, "ws://127.0.0.1:8765/v1/realtime")
    settings.set(COMPATIBLE_AUTH_KEY, "bearer")
    settings.set(PROVIDER_KEY, "azure")
    settings.save()
    with caplog.at_level(logging.DEBUG, logger="desktop"):
        chosen = {kind: provider_choice(kind, environ={}, settings=settings) for kind in ("openai", "azure", "gemini",
                                                                                           "compatible")}
        saved = choose_provider(environ={}, settings=settings, use_keyring=True)
    assert {k: c.api_key for k, c in chosen.items()} == {"openai": OPENAI_KEY, "azure": AZURE_KEY, "gemini": GEMINI_KEY,
                                                         "compatible": COMPAT_KEY}
    assert saved.kind == "azure" and saved.api_key == AZURE_KEY
    assert chosen["azure"].url == "wss://parley-res.openai.azure.com/openai/v1/realtime?model=gpt-realtime"
    # The environment wins over the keyring; another server's key is not this one's.
    assert provider_choice("azure", environ={"AZURE_OPENAI_API_KEY": "env-" + "k" * 30}, settings=settings).api_key == "env-" + "k" * 30
    assert provider_choice("compatible", environ={}, settings=settings, url="ws://127.0.0.1:8766/v1/realtime").api_key is None
    # Without asking the keyring (the default when an environment is passed), no key: the engine.
    assert choose_provider(environ={}).kind == "engine"
    # Nothing secret in the settings file nor the log.
    text = (tmp_path / "settings.json").read_text()
    assert json.loads(text)[PROVIDER_KEY] == "azure"
    for key in (OPENAI_KEY, AZURE_KEY, GEMINI_KEY, COMPAT_KEY):
        assert key not in text and key not in caplog.text and key not in repr(chosen)


def test_the_cli_takes_provider_and_dialect_and_says_what_is_missing(monkeypatch, capsys):
    from desktop.ui.app import build_parser, main

    for var in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT"):
        monkeypatch.delenv(var, raising=False)
    args = build_parser().parse_args(["--provider", "engine", "--dialect", "gemini"])
    assert (args.provider, args.dialect) == ("engine", "gemini")
    for argv, words in ((["--provider", "azure"], "Azure OpenAI needs its endpoint"),
                        (["--provider", "gemini", "--dialect", "openai"], "--dialect goes with"),
                        (["--offline", "--provider", "openai"], "--offline is --provider engine")):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2 and words in capsys.readouterr().err, argv


@pytest.mark.slow
def test_the_app_sends_the_gemini_key_as_google_does_and_never_writes_it(tmp_path):
    """The real app: `--provider gemini --url` at the recorder (plain ws://), the key from GEMINI_API_KEY."""
    home = tmp_path / "home"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", GEMINI_API_KEY=GEMINI_KEY, PARLEY_DISABLE_KEYRING="1")
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"),
                     ("XDG_CACHE_HOME", "cache")):
        env[var] = str(home / sub)

    async def scenario():
        async with Recorder() as server:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "desktop.ui.app", "--provider", "gemini", "--url",
                f"ws://127.0.0.1:{server.port}{GEMINI_LIVE_PATH}", "--log-level", "debug", "--no-speaker",
                "--quit-after", "4", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 120)
            return proc.returncode, out.decode(), err.decode(), server.requests

    code, out, err, requests = asyncio.run(scenario())
    assert code == 0, err[-2000:]
    assert requests and requests[0][0] == GEMINI_LIVE_PATH
    assert _auth(requests[0][1]) == {"x-goog-api-key": GEMINI_KEY}
    assert "Gemini Live" in err and GEMINI_KEY not in out + err
    for path in home.rglob("*"):
        if path.is_file():
            assert GEMINI_KEY not in path.read_text(errors="replace"), path
