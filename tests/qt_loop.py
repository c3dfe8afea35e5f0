"""A qasync event loop per test, closed so that nothing of it can outlive the test in Qt's timer list.

qasync's `close()` only marks its timer object stopped: the timers of callbacks still pending (a test's
`call_later` timeouts) stay registered with Qt until they would fire. The closed loop sits in reference
cycles, so the garbage collector frees it later, in whichever thread happens to trigger a collection: often
one of the next test's engine or audio threads. There Qt cannot unregister the timers ("QObject::~QObject:
Timers cannot be stopped from another thread") and the main thread's next timer pass touches freed memory: a
segmentation fault in QTimerInfoList::activateTimers, seen in CI under tests/test_azure_session.py and
reproduced with a loop freed from a thread. Deleting the timer object in the main thread, at the close,
unregisters them there.
"""

from __future__ import annotations

import asyncio

import qasync
import shiboken6


def new_qasync_loop(app) -> qasync.QEventLoop:
    loop = qasync.QEventLoop(app, already_running=False)
    asyncio.set_event_loop(loop)
    return loop


def close_qasync_loop(loop: qasync.QEventLoop) -> None:
    loop.close()
    asyncio.set_event_loop(None)
    timer = getattr(loop, "_timer", None)
    if timer is not None and shiboken6.isValid(timer):
        shiboken6.delete(timer)
