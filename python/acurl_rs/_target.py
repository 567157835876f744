"""The embedded target the CLI runs against when it is given no URL.

A keep-alive HTTP/1.1 server on loopback that answers every request with the same small body.
It runs as a child process, not a thread: in a thread it would share the GIL with the client's
event loop and the numbers would measure the two fighting over it. The child is this file run
as a script (not ``-m acurl_rs._target``), so it starts without loading the native module.

With `-P N` the CLI starts N of them, one per worker process, so the target grows with the
client instead of one single-threaded server capping N client processes; the report gives the
target's CPU and says when it (or the machine it shares with the client) set the rate.

Child protocol: it binds 127.0.0.1 on a free port, prints the port on a line of stdout, and
serves until its stdin reaches EOF, which happens when the parent closes the pipe or dies, so it
never outlives the CLI.
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
from types import TracebackType

LOOPBACK = "127.0.0.1"
BODY = b"hello from the acurl-rs embedded target\n"
MAX_HEAD = 64 * 1024
STARTUP_TIMEOUT = 15.0


def _response(status: str, body: bytes, *, close: bool, head_only: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Content-Type: text/plain\r\n"
        f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n"
    ).encode("ascii")
    return head if head_only else head + body


# Built once: the server does no per-request formatting on its hot path.
OK = _response("200 OK", BODY, close=False)
OK_HEAD = _response("200 OK", BODY, close=False, head_only=True)
OK_CLOSE = _response("200 OK", BODY, close=True)
BAD_REQUEST = _response("400 Bad Request", b"bad request\n", close=True)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _RequestHead:
    """What the server needs from a request head: body length, keep-alive, HEAD, Expect."""

    __slots__ = ("body_length", "close", "expects_continue", "is_head")

    def __init__(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        request_line = lines[0].split(b" ")
        if len(request_line) != 3 or not request_line[2].startswith(b"HTTP/1."):
            raise ValueError("bad request line")
        self.is_head = request_line[0] == b"HEAD"
        http10 = request_line[2] == b"HTTP/1.0"
        self.body_length = 0
        self.expects_continue = False
        connection = b""
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise ValueError("bad header line")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                self.body_length = int(value)
            elif name == b"transfer-encoding":
                # A chunked upload is never what the CLI sends; refuse rather than misframe.
                raise ValueError("chunked request bodies are not supported")
            elif name == b"connection":
                connection = value
            elif name == b"expect":
                self.expects_continue = value == b"100-continue"
        self.close = b"close" in connection or (http10 and b"keep-alive" not in connection)


class _KeepAliveProtocol(asyncio.Protocol):
    """One connection: answers each complete request (pipelined ones too) with the fixed body.

    A Protocol rather than streams: no task per connection and no await per request, so the
    target stays cheap next to the client it is measuring.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._pending: _RequestHead | None = None
        self._body_start = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not subclass asyncio.Transport.
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None and self._answer_one():
            pass

    def _answer_one(self) -> bool:
        """Answers the request at the front of the buffer if it is complete; False to wait."""
        transport = self._transport
        assert transport is not None
        if self._pending is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    self._fail(transport)
                return False
            try:
                self._pending = _RequestHead(bytes(self._buffer[:end]))
            except ValueError:
                self._fail(transport)
                return False
            self._body_start = end + 4
            if self._pending.expects_continue and len(self._buffer) == self._body_start:
                transport.write(CONTINUE)
        request = self._pending
        request_end = self._body_start + request.body_length
        if len(self._buffer) < request_end:
            return False
        del self._buffer[:request_end]
        self._pending = None
        if request.close:
            transport.write(OK_CLOSE)
            self._fail(transport, answered=True)
            return False
        transport.write(OK_HEAD if request.is_head else OK)
        return True

    def _fail(self, transport: asyncio.Transport, *, answered: bool = False) -> None:
        if not answered:
            transport.write(BAD_REQUEST)
        transport.close()
        self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def serve_until_stdin_closes() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_KeepAliveProtocol, LOOPBACK, 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    stdin_closed = asyncio.Event()
    stdin_fd = sys.stdin.fileno()

    def on_stdin_readable() -> None:
        if not os.read(stdin_fd, 4096):
            stdin_closed.set()

    loop.add_reader(stdin_fd, on_stdin_readable)
    async with server:
        await stdin_closed.wait()
    loop.remove_reader(stdin_fd)


def _run_child() -> None:
    try:
        import uvloop  # The faster loop keeps more of the machine for the client.
    except ImportError:
        asyncio.run(serve_until_stdin_closes())
    else:
        uvloop.run(serve_until_stdin_closes())


class EmbeddedTarget:
    """Starts the target as a child process; `url` is where it listens. Use as a context manager."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def start(self) -> EmbeddedTarget:
        return self.launch().wait_ready()

    def launch(self) -> EmbeddedTarget:
        """Starts the child without waiting for it: several targets can boot side by side."""
        self._process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            # Its own session: a Ctrl-C meant for the CLI must not kill the target while the
            # CLI is still finishing its requests and printing the report.
            start_new_session=True,
        )
        return self

    def wait_ready(self) -> EmbeddedTarget:
        """Waits for the port the child listens on (RuntimeError if it never says)."""
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        ready, _, _ = select.select([stdout], [], [], STARTUP_TIMEOUT)
        line = stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("the embedded target server did not start")
        self.port = int(line)
        return self

    def cpu_seconds(self) -> float | None:
        """CPU time the child has used so far (user + system), or None where /proc is not
        there to say. The CLI uses it to tell when the target, not the client, was busy."""
        if self._process is None:
            return None
        try:
            with open(f"/proc/{self._process.pid}/stat", encoding="ascii") as fh:
                stat = fh.read()
            # Fields after the command name (which may hold spaces): utime, stime are 14, 15.
            fields = stat.rpartition(")")[2].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()  # EOF on its stdin is the child's signal to exit.
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()

    def __enter__(self) -> EmbeddedTarget:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    _run_child()
