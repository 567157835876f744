"""pycurl driven through libcurl's multi socket interface from asyncio.

One `CurlMulti` per session: curl's socket callback becomes add_reader/add_writer/remove_*,
its timer callback one call_soon/call_later handle; readiness and timer events call
`socket_action`, after which finished transfers are drained with `info_read`. Easy handles are
kept and reused (curl_easy_reset is not needed: every per-request option is set again).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pycurl
from common import Adapter, main

_ASK = {"1.1": pycurl.CURL_HTTP_VERSION_1_1, "2": pycurl.CURL_HTTP_VERSION_2_0}
_GOT = {pycurl.CURL_HTTP_VERSION_1_1: "1.1", pycurl.CURL_HTTP_VERSION_2_0: "2"}


class MultiDriver:
    def __init__(self, loop: asyncio.AbstractEventLoop, http: str) -> None:
        self.loop = loop
        self.http = _ASK[http]
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
        self.multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self.multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self.watched: dict[int, int] = {}  # fd -> POLL_IN | POLL_OUT bits registered
        self.timer: asyncio.Handle | None = None
        self.idle: list[pycurl.Curl] = []
        self.pending: dict[pycurl.Curl, tuple[asyncio.Future[int], list[bytes]]] = {}

    # curl -> loop
    def _on_socket(self, what: int, fd: int, multi: Any, socketp: Any) -> None:
        want = 0 if what == pycurl.POLL_REMOVE else what
        had = self.watched.get(fd, 0)
        if had & pycurl.POLL_IN and not want & pycurl.POLL_IN:
            self.loop.remove_reader(fd)
        if had & pycurl.POLL_OUT and not want & pycurl.POLL_OUT:
            self.loop.remove_writer(fd)
        if want & pycurl.POLL_IN and not had & pycurl.POLL_IN:
            self.loop.add_reader(fd, self._action, fd, pycurl.CSELECT_IN)
        if want & pycurl.POLL_OUT and not had & pycurl.POLL_OUT:
            self.loop.add_writer(fd, self._action, fd, pycurl.CSELECT_OUT)
        if want:
            self.watched[fd] = want
        else:
            self.watched.pop(fd, None)

    def _on_timer(self, timeout_ms: int) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if timeout_ms == 0:
            self.timer = self.loop.call_soon(self._on_timeout)
        elif timeout_ms > 0:
            self.timer = self.loop.call_later(timeout_ms / 1000, self._on_timeout)

    # loop -> curl
    def _on_timeout(self) -> None:
        self.timer = None
        self._action(pycurl.SOCKET_TIMEOUT, 0)

    def _action(self, fd: int, events: int) -> None:
        self.multi.socket_action(fd, events)
        while True:
            queued, done, failed = self.multi.info_read()
            for easy in done:
                self._finish(easy, None)
            for easy, _code, message in failed:
                self._finish(easy, pycurl.error(_code, message))
            if not queued:
                break

    def _finish(self, easy: pycurl.Curl, error: Exception | None) -> None:
        self.multi.remove_handle(easy)
        future, _chunks = self.pending.pop(easy)
        if not future.done():
            if error is None:
                future.set_result(easy.getinfo(pycurl.RESPONSE_CODE))
            else:
                future.set_exception(error)

    async def get(self, url: str) -> tuple[int, str, int]:
        if self.idle:
            easy = self.idle.pop()
        else:
            easy = pycurl.Curl()
            easy.setopt(pycurl.HTTP_VERSION, self.http)
            easy.setopt(pycurl.PIPEWAIT, 1)
            easy.setopt(pycurl.SSL_VERIFYPEER, 0)
            easy.setopt(pycurl.SSL_VERIFYHOST, 0)
            easy.setopt(pycurl.NOSIGNAL, 1)
        chunks: list[bytes] = []
        easy.setopt(pycurl.URL, url)
        easy.setopt(pycurl.WRITEFUNCTION, chunks.append)
        future = self.loop.create_future()
        self.pending[easy] = (future, chunks)
        self.multi.add_handle(easy)
        try:
            status = await future
        except asyncio.CancelledError:
            if self.pending.pop(easy, None) is not None:
                self.multi.remove_handle(easy)
            raise
        version = _GOT.get(easy.getinfo(pycurl.INFO_HTTP_VERSION), "?")
        self.idle.append(easy)
        return status, version, len(b"".join(chunks))

    def close(self) -> None:
        for fd, bits in self.watched.items():
            if bits & pycurl.POLL_IN:
                self.loop.remove_reader(fd)
            if bits & pycurl.POLL_OUT:
                self.loop.remove_writer(fd)
        self.watched.clear()
        if self.timer is not None:
            self.timer.cancel()
        for easy in self.idle:
            easy.close()
        self.multi.close()


class Pycurl(Adapter):
    name = "pycurl"

    async def new_session(self, scope: str = "session") -> Any:
        return MultiDriver(asyncio.get_running_loop(), self.http)

    async def fetch(self, session: Any, url: str) -> tuple[int, str, int]:
        return await session.get(url)

    async def close_session(self, session: Any) -> None:
        session.close()

    def library_versions(self) -> dict[str, str]:
        return {"pycurl": pycurl.version}


if __name__ == "__main__":
    main(Pycurl)
