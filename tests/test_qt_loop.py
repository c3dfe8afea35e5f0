"""The tests' qasync loops close without leaving timers in Qt that a later thread could free (tests/qt_loop.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = textwrap.dedent("""
    import asyncio, gc, threading
    from PySide6.QtWidgets import QApplication
    from tests.qt_loop import close_qasync_loop, new_qasync_loop

    app = QApplication([])
    for i in range(3):
        loop = new_qasync_loop(app)
        loop.call_later(0.05 + i * 0.01, lambda: None)  # still pending when the loop closes
        loop.call_later(100, lambda: None)
        loop.run_until_complete(asyncio.sleep(0.01))
        close_qasync_loop(loop)
        cycle = [loop]
        cycle.append(cycle)  # reachable only through a cycle, as a closed loop is
        del loop, cycle
        gc.disable()
        collector = threading.Thread(target=gc.collect)  # freed by the collector in another thread
        collector.start()
        collector.join()
        gc.enable()
    loop = new_qasync_loop(app)
    loop.run_until_complete(asyncio.sleep(0.3))  # the main thread's timer passes go on
    close_qasync_loop(loop)
    print("survived")
""")


def test_a_closed_loop_freed_in_another_thread_leaves_no_timer_behind():
    # With qasync 0.28's close() alone this process died of a segmentation fault (exit 139) in
    # QTimerInfoList::activateTimers, after Qt's "Timers cannot be stopped from another thread".
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", SCENARIO], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "survived" in done.stdout, (done.returncode, done.stderr[-2000:])
    assert "Timers cannot be stopped from another thread" not in done.stderr
