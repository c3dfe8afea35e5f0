"""Waiting on the event loop for something to become true (tests drive real, asynchronous parts)."""

from __future__ import annotations

import asyncio
import time


async def wait_until(predicate, timeout: float, step: float = 0.02) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())
