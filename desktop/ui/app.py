"""`parley`: start the window on a qasync event loop and hold a conversation."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys
import time

from .. import __version__
from ..logging_setup import setup_logging
from ..gc_tuning import freeze_startup_objects
from ..core.series_report import changes_line, summary_line
from ..providers import DEFAULT_GEMINI_MODEL, DIALECTS, PROVIDERS, ProviderSetupError, choose_provider, provider_choice


def _sound_files(paths: list[str]) -> list[str]:
    """--series: the files as given; a folder gives its sound files, numbered names in their numbers' order."""
    from .file_voice_ui import is_sound_file, natural_key

    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            out += sorted((os.path.join(path, n) for n in os.listdir(path) if is_sound_file(n)), key=natural_key)
        else:
            out.append(path)
    return out


#: --quit-at-end: how long after the file's end an answer may take to finish, and how long the conversation must
#: stay quiet (nobody speaking, no answer going or playing) before Parley takes it as over.
QUIT_AT_END_WAIT_S = 60.0
QUIT_AT_END_QUIET_S = 1.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="parley",
        description="Talk to realtime speech-to-speech models with your voice. With OPENAI_API_KEY set, Parley uses "
        "the OpenAI Realtime API; otherwise it starts its embedded offline engine.",
    )
    p.add_argument("--provider", choices=PROVIDERS,
                   help="who to talk to (default: the one chosen in Connection → Provider; else OpenAI when "
                        "OPENAI_API_KEY or a saved key is set, otherwise the offline engine). azure needs "
                        "AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and a deployment (AZURE_OPENAI_DEPLOYMENT or "
                        "--model); gemini needs GEMINI_API_KEY or GOOGLE_API_KEY; compatible needs --url")
    p.add_argument("--dialect", choices=DIALECTS,
                   help="with --provider engine or compatible: the protocol to speak (default openai; gemini: "
                        "Gemini Live's)")
    p.add_argument("--model", help="the realtime model (OpenAI: default gpt-realtime; Azure: the deployment; "
                                   "Gemini: default " + DEFAULT_GEMINI_MODEL + ")")
    p.add_argument("--url", help="a Realtime-compatible WebSocket URL to connect to instead (with --provider: "
                                 "replaces that provider's endpoint, keeping its protocol and how the key is sent)")
    p.add_argument("--offline", action="store_true", help="use the embedded offline engine even if a key is set "
                                                          "(the same as --provider engine)")
    p.add_argument("--audio-in", metavar="FILE.wav",
                   help="play a sound file into the conversation as the microphone, in real time; when it ends, "
                        "silence follows and Parley keeps listening (add --quit-at-end to quit after the answer)")
    p.add_argument("--quit-at-end", action="store_true",
                   help="with --audio-in: quit once the file has been spoken and its answer has finished playing, "
                        "printing what was heard and the answer: exit code 0 when it was answered, 3 when no "
                        f"answer came within {QUIT_AT_END_WAIT_S:.0f} s, 4 without a connection")
    p.add_argument("--input-device", help="microphone (name or index)")
    p.add_argument("--output-device", help="speaker (name or index)")
    p.add_argument("--no-speaker", action="store_true", help="do not play answers aloud")
    p.add_argument("--output-latency", type=float, default=40.0, metavar="MS",
                   help="speaker buffer in ms (default 40; shorter stops the voice sooner on an interruption, "
                        "too short crackles on a busy machine)")
    p.add_argument("--quit-after", type=float, metavar="SECONDS", help="quit after this many seconds")
    p.add_argument("--screenshot", metavar="FILE.png", help="with --quit-after: save a screenshot of the window before quitting")
    p.add_argument("--series", nargs="+", metavar="FILE",
                   help="speak these sound files (or a folder's, by name) one turn each, in this order (Audio → Speak "
                        "a series), write the report, and quit: exit code 0 when every file was answered, 3 when "
                        "one was not")
    p.add_argument("--interrupt-after", type=float, metavar="SECONDS",
                   help="with --series: speak each next file this far into the answer's playback (barge-in)")
    p.add_argument("--report", metavar="FILE.md", help="with --series: also write the report here")
    p.add_argument("--compare", nargs="+", metavar="PROVIDER",
                   help="with --series: run the series on each of these providers in turn (openai, azure, gemini, "
                        "compatible, engine, or engine:gemini for the engine in Gemini's dialect) and write one "
                        "report side by side")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--self-test", action="store_true",
                   help="start the window offscreen and the offline engine, speak a recorded question into it, "
                   "exit 0 only if both transcripts arrive")
    p.add_argument("--version", action="version", version=f"parley {__version__}")
    p.add_argument("--engine", action="store_true", help=argparse.SUPPRESS)  # run the engine (bundled app)
    return p


def _copy_report(report, target: str | None) -> bool:
    """--report: a copy of the run's report where the user asked for it; False (said on stderr) if it failed."""
    if not target or report is None:
        return True
    try:
        shutil.copyfile(report, target)
    except OSError as exc:
        print(f"parley: the report could not be written to {target}: {exc}", file=sys.stderr)
        return False
    return True


def _device(value: str | None):
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--engine" in argv:  # the bundled app runs its engine with the same binary
        from ..engine.cli import main as engine_main

        return engine_main([a for a in argv if a != "--engine"])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quit_at_end and not args.audio_in:
        parser.error("--quit-at-end needs --audio-in FILE (the file whose answer it waits for)")
    t_launch = time.perf_counter()
    if args.self_test:
        from .self_test import run_self_test

        return run_self_test(log_level="warning" if args.log_level == "info" else args.log_level, t_launch=t_launch)
    if _no_display():
        # Qt would abort with "could not connect to display" and a core dump; say what to do instead.
        print("parley: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set). Run it in a desktop "
              "session, or set QT_QPA_PLATFORM=offscreen to run without a window (e.g. with --quit-after).",
              file=sys.stderr)
        return 2
    from ..settings import Settings
    from ..local_llm_discovery import BRAIN_KEY, BrainChoice

    if args.offline and args.provider not in (None, "engine"):
        parser.error(f"--offline is --provider engine; it cannot go with --provider {args.provider}")
    if args.dialect and (args.provider or ("engine" if args.offline else None)) not in ("engine", "compatible"):
        parser.error("--dialect goes with --provider engine or --provider compatible")
    compare: list = []
    if args.compare:
        if not args.series:
            parser.error("--compare needs --series FILE… (the turns to run on each provider)")
        for name in args.compare:
            kind, _, dialect = name.partition(":")
            try:
                compare.append(provider_choice(kind, dialect=dialect or None, settings=Settings.shared()))
            except (ProviderSetupError, ValueError) as exc:
                parser.error(f"--compare {name}: {exc}")
    try:
        # The provider and model chosen in Connection → Provider / Model last time, unless given here.
        provider = choose_provider(model=args.model, url=args.url, force_engine=args.offline, provider=args.provider,
                                   dialect=args.dialect, settings=Settings.shared())
    except ProviderSetupError as exc:
        parser.error(str(exc))
    setup_logging(args.log_level, secrets=[provider.api_key])

    from PySide6.QtWidgets import QApplication
    import qasync

    from ..session import LiveSession, SessionOptions
    from .main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Parley")
    app.setOrganizationName("Parley")
    app.setApplicationVersion(__version__)
    from PySide6.QtGui import QIcon

    from ..resources import resource_path

    app.setWindowIcon(QIcon(str(resource_path("icons", "parley.png"))))
    window = MainWindow()
    window.show()
    session = LiveSession(
        SessionOptions(
            provider=provider,
            audio_in=args.audio_in,
            input_device=_device(args.input_device),
            output_device=_device(args.output_device),
            use_speaker=not args.no_speaker,
            output_latency_s=max(0.005, args.output_latency / 1000.0),
            engine_brain=BrainChoice.from_settings(Settings.shared().get(BRAIN_KEY)),  # Connection → Offline brain
        )
    )
    window.attach(session)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    log = logging.getLogger("parley")
    exit_code = 0

    async def run_series(ok: bool) -> None:
        """--series: the files, the report, the exit code; then quit."""
        nonlocal exit_code
        from .file_voice_ui import series_folder

        if not ok:
            print(f"parley: could not connect: {session.status.detail}", file=sys.stderr)
            exit_code = 4
        elif compare:
            from ..series_compare import compare_providers

            result = await compare_providers(session, compare, _sound_files(args.series), series_folder(),
                                             args.interrupt_after)
            for name, turns in result.runs:
                print(f"{name}: {summary_line(turns)}")
            for name, why in result.failed.items():
                print(f"{name}: not run ({why})")
            print(f"report: {result.report_path}")
            if not _copy_report(result.report_path, args.report):
                exit_code = 4
            if (result.failed or any(t.outcome != "answered" for _, turns in result.runs for t in turns)) \
                    and not exit_code:
                exit_code = 3
        else:
            series = session.speak_files(_sound_files(args.series), series_folder(), args.interrupt_after)
            while series.running:
                await asyncio.sleep(0.1)
            print(summary_line(series.turns))
            if series.previous is not None:
                print(changes_line(series.previous[1], series.turns, series.previous[0]))
            print(f"report: {series.report_path}")
            if not _copy_report(series.report_path, args.report):
                exit_code = 4
            if any(t.outcome != "answered" for t in series.turns) and not exit_code:
                exit_code = 3
        app.quit()

    async def quit_at_end(ok: bool) -> None:
        """--quit-at-end: once the file has gone in and its last turn's answer has finished playing, quit."""
        nonlocal exit_code
        exit_code = await _wait_for_the_files_answer(session, ok, window.notices)
        app.quit()

    async def run() -> None:
        sound = await _start_sound_server(args)
        ok = await session.start()
        if ok:
            log.info("connected window %.0f ms after launch", (time.perf_counter() - t_launch) * 1000)
        if session.devices is not None:
            log.info("sound devices: %s", session.devices.summary)
            if ok and sound is not None and sound.advice and session.devices.problems:
                from ..core.actions import Notice

                window.on_notification(Notice("warning", sound.advice))  # what to run to be heard
        freeze_startup_objects()
        if args.series:
            asyncio.ensure_future(run_series(ok))
        if args.quit_at_end:
            asyncio.ensure_future(quit_at_end(ok))
        if args.quit_after:
            async def later() -> None:
                await asyncio.sleep(args.quit_after)
                if args.screenshot:
                    window.transcript.render_now()
                    window.grab().save(args.screenshot)
                app.quit()
            asyncio.ensure_future(later())
        await closed.wait()

    try:
        with loop:
            loop.run_until_complete(run())
            loop.run_until_complete(session.stop())
    finally:
        if session.engine is not None:
            session.engine.stop_now()
    # Everything that must reach the disk does so now: the conversation file and the logs.
    window.reliability_ui.close()
    # Tear Qt down in order while Python is still fully alive.
    window.close()
    window.deleteLater()
    del window
    app.processEvents()
    app.shutdown()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Then leave without interpreter finalization: native extensions (nanobind's soxr, Qt) have been seen to
    # abort while their objects are garbage-collected at exit ("bool_dealloc"), after all the work was done.
    os._exit(exit_code)


async def _start_sound_server(args):
    """Before the sound devices are first opened: start the user's sound server if it is installed but not
    running (audio.sound_server). Not when no device is needed (a file in, no speaker). The check, or None."""
    if (args.audio_in or args.series) and args.no_speaker:
        return None
    from ..audio.sound_server import ensure_sound_server

    check = await asyncio.get_running_loop().run_in_executor(None, ensure_sound_server)
    logging.getLogger("parley").info("sound server: %s%s", check.state, f" ({check.detail})" if check.detail else "")
    return check


async def _wait_for_the_files_answer(session, ok: bool, notices: list) -> int:
    """--quit-at-end: wait until the --audio-in file has been spoken and the answer to its last turn has finished
    playing, with the conversation quiet for a moment; print what was heard, the answer and how much of it was
    played. The exit code."""
    from ..core.actions import TurnState

    if not ok:
        print(f"parley: could not connect: {session.status.detail}", file=sys.stderr)
        return 4
    source = getattr(session, "_source", None)  # the --audio-in file's WavFileSource, started by session.start()
    finished = getattr(source, "finished", None)
    if finished is None:
        why = next((n.message for n in reversed(notices) if n.level == "error"), "")
        print(f"parley: {why or f'{session.options.audio_in} could not be played as the microphone'}",
              file=sys.stderr)
        return 2
    while not finished.is_set() and not session.closed:
        await asyncio.sleep(0.05)
    client = session.client
    deadline = time.monotonic() + QUIT_AT_END_WAIT_S
    quiet_since: float | None = None
    user = answer = None
    while not session.closed and time.monotonic() < deadline:
        items = list(client.conversation)
        users = [i for i in items if i.role == "user" and i.has_audio]
        user = users[-1] if users else None
        after = items[items.index(user) + 1:] if user is not None else []
        answer = next((i for i in after if i.role == "assistant" and i.kind == "message"), None)
        quiet = (answer is not None and answer.status != "in_progress" and client.active_response is None
                 and client.state == TurnState.LISTENING
                 and not (session.playback.is_playing() or session.playback.is_paused()))
        now = time.monotonic()
        quiet_since = (quiet_since or now) if quiet else None
        if quiet_since is not None and now - quiet_since >= QUIT_AT_END_QUIET_S:
            played, received = (session.playback.played_ms(answer.item_id) / 1000,
                                session.playback.received_ms(answer.item_id) / 1000)
            print(f"heard: {user.text}")
            print(f"answer: {answer.text}")
            print(f"played: {played:.1f} s of {received:.1f} s")
            return 0
        await asyncio.sleep(0.05)
    if user is None:
        print(f"parley: no turn was heard in {session.options.audio_in}", file=sys.stderr)
    else:
        print(f"heard: {user.text}")
        print(f"parley: no answer finished within {QUIT_AT_END_WAIT_S:.0f} s of the file's end", file=sys.stderr)
    return 3


def _no_display() -> bool:
    """On Linux and other X11/Wayland systems: no display to open a window on, and no platform chosen."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


if __name__ == "__main__":
    sys.exit(main())

