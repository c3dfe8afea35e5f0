"""`parley-engine`: the embedded offline Realtime server, usable by any Realtime API client."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .. import __version__

#: The line the engine prints on stdout once it listens; Parley reads the port from it.
READY_PREFIX = "PARLEY_ENGINE_READY"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="parley-engine",
        description="An offline server speaking the OpenAI Realtime API (GA) over WebSocket at /v1/realtime: "
        "Silero VAD, Whisper tiny.en speech recognition and a Piper voice, all on this computer.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one (default: 8765)")
    p.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address (needs --token)")
    p.add_argument("--token", default=os.environ.get("PARLEY_ENGINE_TOKEN"),
                   help="bearer token clients must send (env PARLEY_ENGINE_TOKEN)")
    p.add_argument("--llm-url", default=os.environ.get("PARLEY_LLM_URL"), metavar="URL",
                   help="OpenAI-compatible chat-completions endpoint for the brain, e.g. http://127.0.0.1:8080/v1 "
                   "(llama.cpp server, Ollama, vLLM); replies are spoken sentence by sentence as they stream. "
                   "Without it the built-in offline responder answers (env PARLEY_LLM_URL)")
    p.add_argument("--llm-model", default=os.environ.get("PARLEY_LLM_MODEL", "default"), metavar="NAME",
                   help="model name sent to the --llm-url endpoint (env PARLEY_LLM_MODEL; default: 'default')")
    p.add_argument("--llm-key", default=os.environ.get("PARLEY_LLM_KEY"), metavar="KEY",
                   help="API key for the --llm-url endpoint, sent as a bearer token (prefer env PARLEY_LLM_KEY: "
                   "command lines are visible to other users)")
    p.add_argument("--gemini-session-seconds", type=float, metavar="N",
                   default=os.environ.get("PARLEY_ENGINE_GEMINI_SESSION_SECONDS") or None,
                   help="Gemini Live test hook: send goAway N seconds into each session and close it 5 s later, so a "
                        "client's reconnection with session resumption can be tried (env PARLEY_ENGINE_GEMINI_SESSION_SECONDS)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve wss:// with this PEM certificate (with --tls-key); the "
                   "google-genai SDK connects only over TLS")
    p.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
    p.add_argument("--no-speculation", action="store_true",
                   help="transcribe a turn only after it has ended, not during the pause before (slower; for comparison)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="debug logs one line per event")
    p.add_argument("--exit-with-stdin", action="store_true",
                   help="exit when standard input closes (Parley starts its engine this way, so the engine never "
                        "outlives the app, even after kill -9)")
    p.add_argument("--version", action="version", version=f"parley-engine {__version__}")
    return p


def _stop_because(stop: asyncio.Event, why: str) -> None:
    if not stop.is_set():
        logging.getLogger(__name__).info("stopping: %s", why)
    stop.set()


async def _run(args: argparse.Namespace) -> int:
    from .gemini_live_server import GEMINI_LIVE_PATHS
    from .server import EngineServer, is_loopback

    if not is_loopback(args.host) and not (args.allow_remote and args.token):
        print(
            f"parley-engine: refusing to listen on {args.host!r}: only loopback is allowed unless "
            "--allow-remote is given together with --token.",
            file=sys.stderr,
        )
        return 2
    brain_factory = None
    if args.llm_url:
        from .llm_brain import LLMBrain

        if not args.llm_url.startswith(("http://", "https://")):
            print(f"parley-engine: --llm-url must be an http:// or https:// URL, not {args.llm_url!r}", file=sys.stderr)
            return 2
        url, model, key = args.llm_url, args.llm_model, args.llm_key

        def brain_factory() -> LLMBrain:
            return LLMBrain(url, model=model, api_key=key)

        logging.getLogger(__name__).info("brain: %s (model %s)", brain_factory().endpoint, model)
    ssl_context = None
    if args.tls_cert or args.tls_key:
        import ssl

        if not (args.tls_cert and args.tls_key):
            print("parley-engine: --tls-cert and --tls-key go together", file=sys.stderr)
            return 2
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            print(f"parley-engine: cannot load the TLS certificate: {exc}", file=sys.stderr)
            return 2
    if args.gemini_session_seconds is not None and args.gemini_session_seconds <= 0:
        print("parley-engine: --gemini-session-seconds must be positive", file=sys.stderr)
        return 2
    server = EngineServer(token=args.token, brain_factory=brain_factory, speculate=not args.no_speculation,
                          gemini_session_seconds=args.gemini_session_seconds)
    try:
        port = await server.start(args.host, args.port, ssl_context=ssl_context)
    except OSError as exc:
        print(f"parley-engine: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{READY_PREFIX} port={port}", flush=True)
    scheme = "wss" if ssl_context is not None else "ws"
    logging.getLogger(__name__).info("listening on %s://%s:%d/v1/realtime (Gemini Live: %s)", scheme, args.host, port,
                                     GEMINI_LIVE_PATHS[0])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, _stop_because, stop, f"signal {sig.name}")
        except (NotImplementedError, RuntimeError):
            # No loop signal handlers (Windows): Ctrl+C still arrives as KeyboardInterrupt in main().
            logging.getLogger(__name__).debug("signal handler for %s unavailable on this platform", sig)
    if args.exit_with_stdin:
        def watch_stdin() -> None:
            # os.read on the raw descriptor: no buffered-reader lock for interpreter shutdown to trip over.
            try:
                while os.read(0, 4096):
                    pass
            except OSError:
                pass
            loop.call_soon_threadsafe(_stop_because, stop, "the parent's pipe closed (Parley exited)")

        import threading

        threading.Thread(target=watch_stdin, name="engine-parent-watch", daemon=True).start()
    await stop.wait()
    await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..engine_part import EXIT_NOT_INSTALLED, not_installed_message

    missing = not_installed_message()  # a bundle unpacked without its engine archive
    if missing is not None:
        print(f"parley-engine: {missing}", file=sys.stderr, flush=True)
        return EXIT_NOT_INSTALLED
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s engine %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
