"""Small helpers shared by the behaviour tests (no servers here: see conftest.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def open_fds() -> int:
    """How many file descriptors this process has open right now."""
    return len(os.listdir("/proc/self/fd"))


def live_timers(loop: asyncio.AbstractEventLoop) -> list[Any]:
    """Timer handles still armed on a default asyncio loop (cancelled ones excluded)."""
    return [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]


def watched_fds(loop: asyncio.AbstractEventLoop) -> set[int]:
    """fds the default asyncio loop's selector watches, minus its own self-pipe."""
    selector = loop._selector  # type: ignore[attr-defined]
    own = {loop._ssock.fileno(), loop._csock.fileno()}  # type: ignore[attr-defined]
    return {key.fd for key in selector.get_map().values()} - own


def run_on_uvloop(fn: Callable[[], Awaitable[T]]) -> T:
    """Runs `fn()` to completion on a fresh uvloop event loop."""
    import uvloop

    return uvloop.run(fn())  # type: ignore[arg-type]
