"""An asyncio event loop running in a daemon thread, shared by the test servers.

The servers live on their own loop so that a test's event loop (pytest-asyncio)
is never blocked by them, and a blocking standard-library client in a test
cannot deadlock them either.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    """Owns one event loop and the thread that runs it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                # Cancel whatever is left (connection handlers, sleepers) and
                # let it unwind before the loop is closed.
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self.loop = loop
        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.name}: event loop thread did not start")

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coro`` on the background loop and wait for its result."""
        if self.loop is None:
            coro.close()
            raise RuntimeError(f"{self.name}: not started")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop (cancelling its tasks) and join the thread. Idempotent."""
        thread, loop = self._thread, self.loop
        if thread is None or loop is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"{self.name}: thread did not stop in {timeout}s")
        self._thread = None
        self.loop = None


async def close_server(server: asyncio.AbstractServer, writers: set[asyncio.StreamWriter]) -> None:
    """Stops listening, aborts every open connection, and waits (5 s at most) for the server."""
    server.close()
    for writer in list(writers):
        writer.transport.abort()
    try:
        await asyncio.wait_for(server.wait_closed(), 5)
    except asyncio.TimeoutError:
        pass
