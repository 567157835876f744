"""A raw HTTP/1.1 listener that records every request's exact bytes, for wire-level checks.

``RecordingServer().start()`` listens on 127.0.0.1 in a background loop. It frames requests
leniently (head up to CRLFCRLF, then a Content-Length or chunked body) only to know where one
ends; the *checking* is left to the test, on the bytes in ``requests``. Each request gets the
next raw reply from ``responses`` (a deque the test fills), or ``DEFAULT_RESPONSE`` (a HEAD
gets the head only). A request it cannot frame is recorded as it arrived and the connection is
closed.
"""

from __future__ import annotations

import asyncio
import collections
import re

from .background import BackgroundLoop

DEFAULT_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
MAX_HEAD = 1024 * 1024


class RecordingServer:
    def __init__(self) -> None:
        self.port = 0
        self.requests: list[bytes] = []
        self.connections = 0
        self.responses: collections.deque[bytes] = collections.deque()
        self._bg = BackgroundLoop("RecordingServer")
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> RecordingServer:
        self._bg.start()
        self._server = self._bg.run(
            asyncio.start_server(self._handle, "127.0.0.1", 0, limit=MAX_HEAD)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

        if self._server is not None and self._bg.running:
            self._bg.run(shutdown())
        self._server = None
        self._bg.stop()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def clear(self) -> None:
        self.requests.clear()
        self.responses.clear()
        self.connections = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        self.requests.append(exc.partial)
                    return
                try:
                    body = await self._read_body(reader, head)
                except asyncio.IncompleteReadError as exc:
                    self.requests.append(head + exc.partial)  # the client gave up
                    return
                if body is None:
                    self.requests.append(head + await _drain(reader))
                    return
                self.requests.append(head + body)
                reply = self.responses.popleft() if self.responses else DEFAULT_RESPONSE
                if head.startswith(b"HEAD "):
                    reply = reply.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"  # no body
                writer.write(reply)
                await writer.drain()
        except (asyncio.LimitOverrunError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _read_body(self, reader: asyncio.StreamReader, head: bytes) -> bytes | None:
        fields = re.findall(rb"\r\n([^:\r\n]*):[ \t]*([^\r\n]*)", head)
        lengths = [v.strip() for n, v in fields if n.lower() == b"content-length"]
        chunked = any(n.lower() == b"transfer-encoding" for n, _ in fields)
        if chunked:
            return await _read_chunked(reader)
        if not lengths:
            return b""
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            return None
        return await reader.readexactly(int(lengths[0]))


async def _read_chunked(reader: asyncio.StreamReader) -> bytes | None:
    raw = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        raw += line
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            return None
        if size == 0:
            break
        raw += await reader.readexactly(size + 2)
    while True:
        line = await reader.readuntil(b"\r\n")
        raw += line
        if line == b"\r\n":
            return bytes(raw)


async def _drain(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(65536), 0.2)
    except asyncio.TimeoutError:
        return b""
