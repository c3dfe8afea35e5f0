"""`parley --self-test`: prove that this installation can hold a spoken conversation, without a person.

Decodes a small HEIC photo from `resources/images/` (the image stack), starts the window (offscreen unless
a platform is set), starts the embedded engine (in a bundle: the
same binary with `--engine`), plays the recorded utterance from `resources/audio/self_test.wav` into
it as the microphone, and waits until both the user's transcript (recognised by the engine) and the
assistant's transcript (its answer) are final and shown in the window. Exit 0 only then; otherwise
a non-zero code and one clear line on stderr saying what did not happen.

The last line on stdout is `PARLEY_SELF_TEST {json}` with the timings, for the bundle benchmark.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time

from .. import __version__
from ..resources import SELF_TEST_HEIC, SELF_TEST_WAV, SELF_TEST_WORDS, resource_path

RESULT_PREFIX = "PARLEY_SELF_TEST"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NO_RECORDING = 3
EXIT_NO_ENGINE = 4
EXIT_NO_IMAGES = 5


def _say(text: str) -> None:
    print(f"parley self-test: {text}", flush=True)


def _fail(text: str) -> None:
    print(f"parley self-test FAILED: {text}", file=sys.stderr, flush=True)


def _check_images() -> str | None:
    """Decode the bundled HEIC photo the way an attached file is prepared; None when it reads right."""
    import io

    from ..media.image_pipeline import ImageError, prepare_file

    path = resource_path(*SELF_TEST_HEIC)
    if not path.is_file():
        return f"the test photo {path} is missing from this installation"
    try:
        prepared = prepare_file(path)
        from PIL import Image

        decoded = Image.open(io.BytesIO(prepared.data)).convert("RGB")
    except (ImageError, OSError, ValueError) as exc:
        return f"cannot read HEIC photos: {exc}"
    left, right = decoded.getpixel((prepared.width // 4, prepared.height // 2)), decoded.getpixel(
        (prepared.width * 3 // 4, prepared.height // 2))
    if (prepared.width, prepared.height) != (96, 64) or not (left[1] > 120 > left[0] and right[0] > 150 > right[1]):
        return f"the HEIC test photo decoded wrongly ({prepared.width}x{prepared.height}, {left}, {right})"
    return None


def run_self_test(
    timeout: float = 90.0, log_level: str = "warning", t_launch: float | None = None, hard_exit: bool = True
) -> int:
    """Run the self-test; with `hard_exit` the process ends here with the result's exit code."""
    t_launch = time.perf_counter() if t_launch is None else t_launch
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    wav = resource_path(*SELF_TEST_WAV)
    if not wav.is_file():
        _fail(f"the recorded utterance {wav} is missing from this installation")
        return EXIT_NO_RECORDING
    problem = _check_images()
    if problem is not None:
        _fail(problem)
        return EXIT_NO_IMAGES
    _say("reads PNG, JPEG and HEIC photos")
    from ..engine_part import not_installed_message

    missing = not_installed_message()  # only the app archive was unpacked
    if missing is not None:
        _fail(missing)
        return EXIT_NO_ENGINE

    from PySide6.QtWidgets import QApplication
    import qasync

    from ..logging_setup import setup_logging
    from ..providers import choose_provider
    from ..session import LiveSession, SessionOptions
    from .main_window import MainWindow

    setup_logging(log_level)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Parley")
    window = MainWindow(keep_layout=False)  # the user's saved window layout is neither used nor changed
    window.show()
    session = LiveSession(
        SessionOptions(provider=choose_provider(force_engine=True), audio_in=str(wav), use_speaker=False)
    )
    window.attach(session)
    result: dict = {"version": __version__, "frozen": bool(getattr(sys, "frozen", False)), "ok": False}

    def on_note(note) -> None:  # the moment the window's status bar says "connected"
        if getattr(note, "phase", None) == "connected" and "connected_ms" not in result:
            result["connected_ms"] = round((time.perf_counter() - t_launch) * 1000, 1)
            result["connected_unix"] = time.time()

    session.subscribe(on_note)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    async def converse() -> int:
        if not await session.start():
            _fail(f"could not connect to the offline engine: {session.status.detail or session.status.phase}")
            return EXIT_FAILED
        # "ready": start() has also set up local VAD, audio input and output after connecting.
        result["ready_ms"] = round((time.perf_counter() - t_launch) * 1000, 1)
        _say(f"connected window {result['connected_ms']:.0f} ms after launch (ready {result['ready_ms']:.0f} ms); "
             f"speaking {wav.name} into the engine")
        t_spoken = time.perf_counter()
        deadline = t_spoken + timeout
        user = assistant = None
        while time.perf_counter() < deadline:
            if session.status.phase in ("disconnected", "failed"):
                _fail(f"the connection ended: {session.status.detail or session.status.phase}")
                return EXIT_FAILED
            items = session.client.conversation.items
            failed = next((i for i in items if i.role == "user" and i.transcription_failed), None)
            if failed is not None:
                _fail(f"the engine could not transcribe the recording: {failed.transcription_failed} "
                      "(are the offline engine's models installed?)")
                return EXIT_FAILED
            user = next((i for i in items if i.role == "user" and i.text_final), None)
            assistant = next((i for i in items if i.role == "assistant" and i.text_final), None)
            if user is not None and assistant is not None:
                break
            await asyncio.sleep(0.05)
        result["conversation_s"] = round(time.perf_counter() - t_spoken, 2)
        result["user"] = user.text if user is not None else None
        result["assistant"] = assistant.text if assistant is not None else None
        if user is None or not (user.text or "").strip():
            _fail(f"no transcript of the recorded utterance arrived within {timeout:.0f} s")
            return EXIT_FAILED
        if assistant is None or not (assistant.text or "").strip():
            _fail(f"the engine heard {user.text!r} but no answer's transcript arrived within {timeout:.0f} s")
            return EXIT_FAILED
        said = user.text.lower()
        missing = [w for w in SELF_TEST_WORDS if w not in said]
        if missing:
            _fail(f"the engine misheard the recording: got {user.text!r}, which lacks {', '.join(missing)}")
            return EXIT_FAILED
        shown = " ".join(window.transcript_text().split())
        if " ".join(user.text.split()) not in shown or " ".join(assistant.text.split())[:40] not in shown:
            _fail("both transcripts arrived but the window does not show them")
            return EXIT_FAILED
        _say(f"you said: {user.text!r}")
        _say(f"the engine answered: {assistant.text!r}")
        from .. import secrets

        result["keyring"] = secrets.keyring_backend()  # where a saved API key would be kept (no key is read)
        result["ok"] = True
        return EXIT_OK

    code = EXIT_FAILED
    try:
        with loop:
            try:
                code = loop.run_until_complete(converse())
            except Exception as exc:  # a self-test reports, it never crashes
                _fail(f"{type(exc).__name__}: {exc}")
                code = EXIT_FAILED
            loop.run_until_complete(session.stop())
    finally:
        if session.engine is not None:
            session.engine.stop_now()
    window.close()
    window.deleteLater()
    del window
    app.processEvents()
    app.shutdown()
    if code == EXIT_OK:
        _say("OK")
    print(f"{RESULT_PREFIX} {json.dumps(result)}", flush=True)
    if hard_exit:
        # The verdict is in. Skip interpreter finalization: a C extension occasionally crashes while being
        # garbage-collected at exit ("bool_dealloc", seen about 1 run in 4 from source), which would turn
        # a passed self-test into SIGABRT. The engine child has been stopped above.
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)
    return code
