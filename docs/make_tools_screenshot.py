"""Make docs/tools.png: the Instructions and voice dock with an agent profile and two tools, after a real tool call.

    .venv/bin/python docs/make_tools_screenshot.py

Parley runs offscreen with a fresh home on its embedded offline engine (no speaker). The script saves a
profile, adds the example tool `get_weather` (a canned result, answered at once) and a `book_table` tool
without one, then types two requests: the first is answered from the canned result, the second's call
waits in the Tools panel for a typed result. The window is saved while it waits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "tools.png"


def _private_home(tmp: str) -> None:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ["HOME"] = tmp
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"),
                     ("XDG_CACHE_HOME", "cache")):
        os.environ[var] = str(Path(tmp) / sub)
    os.environ.pop("OPENAI_API_KEY", None)
    os.environ["PARLEY_DISABLE_KEYRING"] = "1"
    os.environ["PARLEY_NO_SOUND_SERVER_START"] = "1"


async def _until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        await asyncio.sleep(0.05)
    return bool(predicate())


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        _private_home(tmp)
        import qasync
        from PySide6.QtWidgets import QApplication

        from desktop.core.tools import parse_tool
        from desktop.providers import choose_provider
        from desktop.session import LiveSession, SessionOptions
        from desktop.settings import Settings
        from desktop.ui.main_window import MainWindow

        app = QApplication([])
        loop = qasync.QEventLoop(app, already_running=False)
        asyncio.set_event_loop(loop)
        window = MainWindow(settings=Settings.load(Path(tmp) / "settings.json"), keep_layout=False)
        window.resize(1100, 1040)
        window.show()
        session = LiveSession(SessionOptions(choose_provider(environ={}), use_speaker=False))
        window.attach(session)
        agent = window.agent_ui
        booking = parse_tool(
            "book_table", "Book a table at the restaurant.",
            json.dumps({"type": "object", "required": ["party_size"],
                        "properties": {"party_size": {"type": "integer"}, "time": {"type": "string"}}}),
            "",  # no canned result: the user types it
        )

        async def scenario() -> str | None:
            if not await session.start():
                return f"no engine: {session.status.detail}"
            agent.dock.instructions.setPlainText("You are Ada, the front desk of a small restaurant. "
                                                 "Answer in one or two short sentences.")
            agent.dock.apply_instructions()
            agent.tools.add_example()
            agent.tools.add_tool(booking)
            agent.save_profile("Ada (front desk)")
            agent.dock.raise_()
            session.send_text("What's the weather like in Paris today?")
            if not await _until(lambda: "sunny" in window.transcript_text() or "18" in window.transcript_text(), 60):
                return "no answer from the canned result:\n" + window.transcript_text()
            await asyncio.sleep(1.5)  # the answer finishes streaming
            session.send_text("Please book a table for 4 people at 8 pm.")
            if not await _until(lambda: agent.tools.pending_box.isVisible(), 60):
                return "the booking call did not come:\n" + window.transcript_text()
            agent.tools.pending_result.setPlainText('{"status": "booked", "table": 12}')
            agent.dock.widget().ensureWidgetVisible(agent.tools.pending_box)  # the dock scrolls to the waiting call
            window.transcript.render_now()
            await asyncio.sleep(0.5)
            window.grab().save(str(OUT))
            await session.stop()
            await asyncio.sleep(0.2)
            return None

        problem = loop.run_until_complete(scenario())
    if problem:
        sys.stderr.write(problem + "\n")
        return 1
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
