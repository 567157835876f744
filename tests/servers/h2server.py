"""A small HTTP/2 server on the ``h2`` package, for HTTP/2 fault tests.

``H2Server(tls=False)`` speaks cleartext HTTP/2 with prior knowledge (``h2c``, no Upgrade);
``H2Server(tls=True)`` speaks HTTP/2 over TLS, offering only ``h2`` by ALPN, with a certificate
for 127.0.0.1/localhost from a private trustme CA (``ca_path``). It binds 127.0.0.1 only and
runs on a `BackgroundLoop`.

Routes (``mode="normal"``, the default; query strings are ignored except where noted):

- ``/ok...``: 200, body ``b"ok <path>"``; ``?delay=<s>`` answers after that many seconds.
- ``/rst``: RST_STREAM(INTERNAL_ERROR) as soon as the request headers arrive.
- ``/refuse``: RST_STREAM(REFUSED_STREAM) (a client may retry that on a new connection).
- ``/upload``: reads the whole body (flow control kept open) and answers its length.

Connection-wide modes (``server.mode = ...`` before the requests):

- ``"goaway"``: on the first connection only, wait until ``goaway_after`` requests are open
  (or ``goaway_wait`` seconds passed), send GOAWAY with ``last_stream_id`` = the lowest open
  stream, then answer that stream and close the connection; the other streams are never
  answered there. Later connections behave normally.
- ``"goaway_abrupt"``: like ``"goaway"``, but GOAWAY(last_stream_id=0, PROTOCOL_ERROR) and the
  connection is closed at once without answering anything.
- ``"stall"``: after the first request's headers, never read from the socket again and never
  send WINDOW_UPDATE; with ``stall_big_window`` the server first announces a 16 MiB window
  (stream and connection) so the client fills the TCP buffers instead of the HTTP/2 window.

What happened is recorded in ``connections`` (count), ``streams`` (``(connection_no,
stream_id, path)`` per request seen) and ``goaways`` (``(last_stream_id, open_stream_ids)``).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
from urllib.parse import parse_qsl

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import trustme
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import GoAwayFrame

from .background import BackgroundLoop, close_server

LOOPBACK_V4 = "127.0.0.1"
BIG_WINDOW = 16 * 1024 * 1024
MODES = ("normal", "goaway", "goaway_abrupt", "stall")


class H2Server:
    """HTTP/2 test server; see the module docstring."""

    def __init__(self, *, tls: bool = False, ca: trustme.CA | None = None) -> None:
        self.tls = tls
        self.ca = ca or trustme.CA()
        self.port = 0
        self.mode = "normal"
        self.goaway_after = 4
        self.goaway_wait = 2.0
        self.stall_big_window = False
        self.connections = 0
        self.streams: list[tuple[int, int, str]] = []
        self.goaways: list[tuple[int, list[int]]] = []
        self._tmpdir = tempfile.mkdtemp(prefix="h2server-")
        self.ca_path = os.path.join(self._tmpdir, "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        self._bg = BackgroundLoop(f"H2Server-{'tls' if tls else 'h2c'}")
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._stopping: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        ctx.set_alpn_protocols(["h2"])
        return ctx

    def start(self) -> H2Server:
        self._bg.start()
        ctx = self._ssl_context() if self.tls else None
        try:
            self._server = self._bg.run(
                asyncio.start_server(self._on_connect, LOOPBACK_V4, 0, ssl=ctx)
            )
        except BaseException:
            self._bg.stop()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None and self._bg.running:
            self._bg.run(self._shutdown())
        self._server = None
        self._bg.stop()
        for name in os.listdir(self._tmpdir):
            os.unlink(os.path.join(self._tmpdir, name))
        os.rmdir(self._tmpdir)

    async def _shutdown(self) -> None:
        assert self._server is not None
        if self._stopping is not None:
            self._stopping.set()
        await close_server(self._server, self._writers)

    def __enter__(self) -> H2Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str = "/") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{LOOPBACK_V4}:{self.port}{path}"

    def reset(self, mode: str = "normal") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown H2Server mode {mode!r}")
        self.mode = mode
        self.connections = 0
        self.streams.clear()
        self.goaways.clear()

    # -- connections -------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping is None:
            self._stopping = asyncio.Event()
        self.connections += 1
        handler = _Connection(self, self.connections, reader, writer)
        self._writers.add(writer)
        try:
            await handler.run()
        except (ConnectionError, h2.exceptions.ProtocolError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # server shutdown
        finally:
            self._writers.discard(writer)
            for task in handler.tasks:
                task.cancel()
            writer.transport.abort()


class _Connection:
    def __init__(
        self,
        server: H2Server,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.number = number
        self.reader = reader
        self.writer = writer
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.tasks: set[asyncio.Task[None]] = set()
        self.open_streams: dict[int, str] = {}
        self.bodies: dict[int, int] = {}
        self.stalled = False
        self.closing = False
        self.goaway_task: asyncio.Task[None] | None = None
        mode = server.mode
        self.goaway_here = mode.startswith("goaway") and number == 1
        self.stall_here = mode == "stall"

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.transport.is_closing():
            self.writer.write(data)

    async def run(self) -> None:
        if self.stall_here and self.server.stall_big_window:
            self.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: BIG_WINDOW})
        self.conn.initiate_connection()
        if self.stall_here and self.server.stall_big_window:
            self.conn.increment_flow_control_window(BIG_WINDOW)
        self.flush()
        while not self.closing:
            data = await self.reader.read(65536)
            if not data:
                return
            for event in self.conn.receive_data(data):
                self.on_event(event)
            self.flush()
            await self.writer.drain()
            if self.stalled:
                # Never read again: the client's window (or the TCP buffers) fill up.
                assert self.server._stopping is not None
                await self.server._stopping.wait()
                return

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers = dict(event.headers)
            path = headers.get(":path", "/")
            self.server.streams.append((self.number, event.stream_id, path))
            self.on_request(event.stream_id, path, event.stream_ended is not None)
        elif isinstance(event, h2.events.DataReceived):
            if event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.bodies[event.stream_id] = self.bodies.get(event.stream_id, 0) + len(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            path = self.open_streams.get(event.stream_id, "")
            if path.split("?")[0] == "/upload":
                self.respond(event.stream_id, b"%d" % self.bodies.get(event.stream_id, 0))
        elif isinstance(event, h2.events.StreamReset):
            self.open_streams.pop(event.stream_id, None)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closing = True

    def on_request(self, stream_id: int, path: str, ended: bool) -> None:
        self.open_streams[stream_id] = path
        if self.stall_here:
            self.stalled = True
            return
        if self.goaway_here:
            if self.goaway_task is None:
                self.goaway_task = asyncio.get_running_loop().create_task(self.goaway())
                self.tasks.add(self.goaway_task)
            return
        route, _, query = path.partition("?")
        if route == "/rst":
            self.conn.reset_stream(stream_id, ErrorCodes.INTERNAL_ERROR)
            self.open_streams.pop(stream_id, None)
        elif route == "/refuse":
            self.conn.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            self.open_streams.pop(stream_id, None)
        elif route == "/upload":
            pass  # answered on StreamEnded
        else:
            delay = float(dict(parse_qsl(query)).get("delay", "0"))
            if delay > 0:
                self.spawn(self.respond_later(stream_id, b"ok " + path.encode(), delay))
            else:
                self.respond(stream_id, b"ok " + path.encode())

    def respond(self, stream_id: int, body: bytes, status: int = 200) -> None:
        if stream_id not in self.open_streams:
            return
        try:
            self.conn.send_headers(
                stream_id,
                [(":status", str(status)), ("content-length", str(len(body)))],
            )
            self.conn.send_data(stream_id, body, end_stream=True)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass
        self.open_streams.pop(stream_id, None)
        self.flush()

    async def respond_later(self, stream_id: int, body: bytes, delay: float) -> None:
        await asyncio.sleep(delay)
        self.respond(stream_id, body)
        await self.writer.drain()

    async def goaway(self) -> None:
        server = self.server
        deadline = asyncio.get_running_loop().time() + server.goaway_wait
        while (
            len(self.open_streams) < server.goaway_after
            and asyncio.get_running_loop().time() < deadline
        ):
            await asyncio.sleep(0.01)
        open_ids = sorted(self.open_streams)
        abrupt = server.mode == "goaway_abrupt"
        last = 0 if abrupt else open_ids[0]
        error = ErrorCodes.PROTOCOL_ERROR if abrupt else ErrorCodes.NO_ERROR
        server.goaways.append((last, open_ids))
        # Written by hand: h2's state machine refuses to answer a stream after its own GOAWAY,
        # which is exactly what a graceful shutdown does (RFC 9113 section 6.8).
        self.flush()
        self.writer.write(GoAwayFrame(0, last_stream_id=last, error_code=error).serialize())
        await self.writer.drain()
        if not abrupt:
            await asyncio.sleep(0.1)
            self.respond(last, b"ok last")
            await self.writer.drain()
            await asyncio.sleep(0.2)
        self.closing = True
        self.writer.transport.close()
