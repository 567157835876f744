"""Raw-TCP misbehaviours for error-path tests, each on its own loopback listener.

``FaultServer().start()`` opens one listener per mode; ``url(mode)`` gives its
``http://127.0.0.1:PORT/`` URL. Modes that answer a request read the request
head first (so the client does not see a reset for unread data):

- ``close_after_accept``: close (FIN) right after accept, before reading anything.
- ``reset_after_accept``: RST (SO_LINGER 0) right after accept.
- ``close_after_request``: read the request head, close without a reply.
- ``close_mid_headers``: send ``HTTP/1.1 200 OK\\r\\nContent-Type: text/pl``, close.
- ``short_body``: ``Content-Length: 100``, then 10 bytes, then close.
- ``invalid_status_line``: ``HTTP/1.1 abc Weird`` as the status line.
- ``http09``: a bare body with no status line or headers, then close.
- ``huge_header``: a single 1 MiB header (``X-Huge``) then an empty body.
- ``broken_chunked``: chunked body, one full chunk, half of the next, then close.
- ``trickle``: ``/?n=<bytes>&interval=<s>`` (defaults 20, 0.2): Content-Length n,
  one byte every ``interval`` seconds.
- ``accept_nothing``: a socket listening with backlog 0 that never accepts; its
  accept queue is pre-filled at start, so on Linux the kernel drops further SYNs
  and a connect to it stays in SYN_SENT until the client's connect timeout.
  ``accept_nothing_verified`` says whether a probe connect timed out at start.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import threading
from urllib.parse import parse_qsl

from .background import BackgroundLoop

LOOPBACK_V4 = "127.0.0.1"
HUGE_HEADER_SIZE = 1024 * 1024

ASYNC_MODES = (
    "close_after_accept",
    "reset_after_accept",
    "close_after_request",
    "close_mid_headers",
    "short_body",
    "invalid_status_line",
    "http09",
    "huge_header",
    "broken_chunked",
    "trickle",
)
MODES = (*ASYNC_MODES, "accept_nothing")


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return b""


def _query(head: bytes) -> dict[str, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    target = parts[1] if len(parts) > 1 else "/"
    return dict(parse_qsl(target.partition("?")[2]))


class FaultServer:
    """Misbehaving loopback listeners (see module docstring for the modes)."""

    def __init__(self, host: str = LOOPBACK_V4) -> None:
        if host not in ("127.0.0.1", "::1"):
            raise ValueError("FaultServer binds loopback only (127.0.0.1 or ::1)")
        self.host = host
        self.ports: dict[str, int] = {}
        self.connections: dict[str, int] = dict.fromkeys(ASYNC_MODES, 0)
        self.accept_nothing_verified = False
        self._bg = BackgroundLoop("FaultServer")
        self._servers: list[asyncio.AbstractServer] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._accept_nothing: socket.socket | None = None
        self._fillers: list[socket.socket] = []

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FaultServer:
        self._bg.start()
        try:
            for mode in ASYNC_MODES:
                server = self._bg.run(self._listen(mode))
                self._servers.append(server)
                self.ports[mode] = server.sockets[0].getsockname()[1]
            self._start_accept_nothing()
        except BaseException:
            self.stop()
            raise
        return self

    async def _listen(self, mode: str) -> asyncio.AbstractServer:
        handler = getattr(self, f"_{mode}")

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections[mode] += 1
            self._writers.add(writer)
            try:
                await handler(reader, writer)
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 10)
            except (ConnectionError, asyncio.TimeoutError):
                writer.transport.abort()
            except BaseException:
                writer.transport.abort()
                raise
            finally:
                self._writers.discard(writer)

        return await asyncio.start_server(on_connect, self.host, 0)

    def stop(self) -> None:
        if self._bg.running:
            self._bg.run(self._shutdown())
        self._bg.stop()
        self._servers.clear()
        for sock in self._fillers:
            sock.close()
        self._fillers.clear()
        if self._accept_nothing is not None:
            self._accept_nothing.close()
            self._accept_nothing = None

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 5)
            except asyncio.TimeoutError:
                pass

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def thread(self) -> threading.Thread | None:
        """The background thread running the server loop (None when stopped)."""
        return self._bg.thread

    def url(self, mode: str, path: str = "/") -> str:
        if mode not in self.ports:
            raise KeyError(f"unknown or not started fault mode {mode!r}")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.ports[mode]}{path}"

    def address(self, mode: str) -> tuple[str, int]:
        return self.host, self.ports[mode]

    # -- accept_nothing ----------------------------------------------------

    def _start_accept_nothing(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.bind((self.host, 0))
        listener.listen(0)
        self._accept_nothing = listener
        addr = listener.getsockname()[:2]
        self.ports["accept_nothing"] = addr[1]
        # Fill the accept queue (backlog 0 holds one connection on Linux) until
        # a connect no longer completes: from then on the kernel drops SYNs.
        for _ in range(16):
            sock = self._try_connect(family, addr, 0.3)
            if sock is None:
                break
            self._fillers.append(sock)
        probe = self._try_connect(family, addr, 0.3)
        self.accept_nothing_verified = bool(self._fillers) and probe is None
        if probe is not None:
            probe.close()

    @staticmethod
    def _try_connect(family: int, addr: tuple[str, int], timeout: float) -> socket.socket | None:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(addr)
        _, writable, _ = select.select([], [sock], [], timeout)
        if writable and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            return sock
        sock.close()
        return None

    # -- modes -------------------------------------------------------------

    async def _close_after_accept(self, reader, writer) -> None:
        return None

    async def _reset_after_accept(self, reader, writer) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _close_after_request(self, reader, writer) -> None:
        await _read_head(reader)

    async def _close_mid_headers(self, reader, writer) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/pl")
        await writer.drain()

    async def _short_body(self, reader, writer) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()

    async def _invalid_status_line(self, reader, writer) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 abc Weird\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async def _http09(self, reader, writer) -> None:
        await _read_head(reader)
        writer.write(b"no status line, no headers\n")
        await writer.drain()

    async def _huge_header(self, reader, writer) -> None:
        await _read_head(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nX-Huge: "
            + b"a" * HUGE_HEADER_SIZE
            + b"\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()

    async def _broken_chunked(self, reader, writer) -> None:
        await _read_head(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\na\r\n01234"
        )
        await writer.drain()

    async def _trickle(self, reader, writer) -> None:
        query = _query(await _read_head(reader))
        n = int(query.get("n", "20"))
        interval = float(query.get("interval", "0.2"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
        await writer.drain()
        for i in range(n):
            await asyncio.sleep(interval)
            if writer.transport.is_closing() or reader.at_eof():
                return  # the client gave up
            writer.write(bytes([0x61 + i % 26]))
            await writer.drain()
