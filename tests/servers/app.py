"""A small HTTP/1.1 test server on raw asyncio streams (standard library only).

``TestServer`` runs in a background thread with its own event loop and binds
loopback only. It supports persistent connections, Content-Length and chunked
request bodies, and answers ``Expect: 100-continue`` with an interim 100.

Endpoints (any method unless noted; HEAD gets the GET headers without a body):

- ``/echo`` (and ``/echo/...``): 200 JSON ``{"method", "path", "query",
  "http_version", "headers": [[name, value], ...] (received order and case,
  latin-1 decoded), "body_b64"}``.
- ``/status/<code>``: that status (200..599), empty body, no Location.
- ``/redirect/<n>``: 302 to ``/redirect/<n-1>``; ``/redirect/0`` is 200 "done".
- ``/redirect-to?url=<url>&status=<code>``: that status (default 302), Location: url.
- ``/set-cookie?name=value&...``: 200, one ``Set-Cookie: name=value; Path=/`` per pair.
- ``/cookies``: 200 JSON string of the Cookie header received, or ``null``.
- ``/slow?delay=<s>``: 200 "slow" after ``delay`` seconds (default 1).
- ``/bytes?n=<n>&seed=<s>[&chunked=1]``: ``pseudo_random_bytes(n, seed)``.
- ``/nul``: body ``b"a\\x00b\\x00c"``.
- ``/headers-latin1``: header ``X-Latin1: caf\\xe9`` (raw byte 0xE9).
- ``/repeat-header``: ``X-Multi: a`` and ``X-Multi: b``.
- ``/continue``: the /echo JSON plus ``"interim_sent"`` (true when a 100 was sent).
- ``/sleep-forever``: never answers; returns when the client disconnects.
- ``/close``: 200 "closing" with ``Connection: close``, then closes.
"""

from __future__ import annotations

import asyncio
import base64
import http
import json
import random
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from .background import BackgroundLoop, close_server

LOOPBACK_V4 = "127.0.0.1"
MAX_HEAD = 2 * 1024 * 1024  # request line + headers
NUL_BODY = b"a\x00b\x00c"


def pseudo_random_bytes(n: int, seed: int | str = 0) -> bytes:
    """Deterministic bytes for ``/bytes``: every 64th byte (offset 0, 64, ...) is NUL."""
    data = bytearray(random.Random(f"acurl-test:{seed}").randbytes(n))
    data[::64] = bytes(len(range(0, n, 64)))
    return bytes(data)


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class BadRequest(Exception):
    def __init__(self, status: int = 400, message: str = "bad request") -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    interim_sent: bool = False

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    @property
    def args(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.args:
            if key == name:
                return value
        return default

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return ", ".join(values) if values else None

    def tokens(self, name: str) -> list[str]:
        value = self.header(name) or ""
        return [t.strip().lower() for t in value.split(",") if t.strip()]

    def wants_close(self) -> bool:
        connection = self.tokens("connection")
        if "close" in connection:
            return True
        return self.version == "HTTP/1.0" and "keep-alive" not in connection

    def echo(self) -> dict:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "http_version": self.version,
            "headers": [[k, v] for k, v in self.headers],
            "body_b64": base64.b64encode(self.body).decode("ascii"),
        }


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str | bytes]] = field(default_factory=list)
    chunked: bool = False
    close: bool = False

    @classmethod
    def json(cls, obj: object, status: int = 200) -> Response:
        body = json.dumps(obj).encode()
        return cls(status, body, [("Content-Type", "application/json")])

    @classmethod
    def text(cls, text: str | bytes, status: int = 200) -> Response:
        body = text.encode() if isinstance(text, str) else text
        return cls(status, body, [("Content-Type", "text/plain")])


def reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _int_arg(request: Request, name: str, default: int) -> int:
    try:
        return int(request.arg(name, str(default)))
    except ValueError:
        raise BadRequest(400, f"bad {name}") from None


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request head (not the body). None on a clean EOF between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest(400, "incomplete request head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest(431, "request head too large") from None
    lines = head.lstrip(b"\r\n").decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "bad request line")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, "bad header line")
        headers.append((name, value.strip(" \t")))
    return Request(parts[0], parts[1], parts[2], headers)


async def read_body(reader: asyncio.StreamReader, request: Request) -> bytes:
    te = request.tokens("transfer-encoding")
    if te:
        if te[-1] != "chunked":
            raise BadRequest(501, "unsupported transfer-encoding")
        return await read_chunked(reader)
    length = request.header_values("content-length")
    if not length:
        return b""
    if len(set(length)) != 1 or not length[0].isdigit():
        raise BadRequest(400, "bad content-length")
    return await reader.readexactly(int(length[0]))


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadRequest(400, "bad chunk size") from None
        if size == 0:
            break
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest(400, "bad chunk terminator")
    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailer fields
        pass
    return bytes(body)


def serialize_head(response: Response, head_only: bool) -> bytes:
    status = response.status
    lines = [f"HTTP/1.1 {status} {reason_phrase(status)}".encode()]
    for name, value in response.headers:
        raw = value if isinstance(value, bytes) else value.encode("latin-1")
        lines.append(name.encode("latin-1") + b": " + raw)
    no_body = status in (204, 304) or 100 <= status < 200
    if not no_body:
        if response.chunked:
            lines.append(b"Transfer-Encoding: chunked")
        else:
            lines.append(b"Content-Length: %d" % len(response.body))
    if response.close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def serialize_body(response: Response, chunk_size: int = 16384) -> bytes:
    if response.status in (204, 304):
        return b""
    if not response.chunked:
        return response.body
    out = bytearray()
    body = response.body
    for i in range(0, len(body), chunk_size):
        piece = body[i : i + chunk_size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


class TestServer:
    """Loopback HTTP/1.1 server in a background thread. ``start()`` returns the base URL."""

    __test__ = False  # not a pytest test class

    def __init__(self, host: str = LOOPBACK_V4) -> None:
        if host not in ("127.0.0.1", "::1"):
            raise ValueError("TestServer binds loopback only (127.0.0.1 or ::1)")
        self.host = host
        self.port: int | None = None
        self.base_url: str | None = None
        self.connections_accepted = 0
        self.requests_served = 0
        self._bg = BackgroundLoop(f"TestServer-{host}")
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> str:
        self._bg.start()
        try:
            self._server = self._bg.run(
                asyncio.start_server(self._handle, self.host, 0, limit=MAX_HEAD, reuse_address=True)
            )
        except BaseException:
            self._bg.stop()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://{format_host(self.host)}:{self.port}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None and self._bg.running:
            self._bg.run(self._shutdown())
        self._server = None
        self._bg.stop()

    async def _shutdown(self) -> None:
        assert self._server is not None
        await close_server(self._server, self._writers)

    def __enter__(self) -> TestServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests -------------------------------------------------

    @property
    def thread(self) -> threading.Thread | None:
        """The background thread running the server loop (None when stopped)."""
        return self._bg.thread

    def url(self, path: str = "/") -> str:
        if self.base_url is None:
            raise RuntimeError("TestServer not started")
        return self.base_url + path

    def __str__(self) -> str:
        return self.base_url or "<TestServer not started>"

    def reset_counters(self) -> None:
        self.connections_accepted = 0
        self.requests_served = 0

    @property
    def open_connections(self) -> int:
        return len(self._writers)

    # -- connection handling -----------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        self._writers.add(writer)
        try:
            try:
                while await self._serve_one(reader, writer):
                    pass
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.transport.abort()
                return
            except BaseException:  # cancelled on shutdown, or a server bug
                writer.transport.abort()
                raise
            # Graceful close: flush what is still buffered (large bodies).
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 30)
            except (ConnectionError, asyncio.TimeoutError):
                writer.transport.abort()
        finally:
            self._writers.discard(writer)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; return whether the connection stays open."""
        try:
            request = await read_request(reader)
            if request is None:
                return False
            if "100-continue" in request.tokens("expect") and request.version != ("HTTP/1.0"):
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await writer.drain()
                request.interim_sent = True
            request.body = await read_body(reader, request)
        except BadRequest as exc:
            response = Response.text(str(exc) + "\n", exc.status)
            response.close = True
            writer.write(serialize_head(response, False) + response.body)
            await writer.drain()
            return False

        response = await self._dispatch(request, reader)
        if response is None:  # e.g. /sleep-forever after the client went away
            return False
        if request.wants_close():
            response.close = True
        self.requests_served += 1
        head_only = request.method == "HEAD"
        data = serialize_head(response, head_only)
        if not head_only:
            data += serialize_body(response)
        writer.write(data)
        await writer.drain()
        return not response.close

    async def _dispatch(self, request: Request, reader: asyncio.StreamReader) -> Response | None:
        path = request.path
        try:
            if path == "/echo" or path.startswith("/echo/"):
                return Response.json(request.echo())
            if path.startswith("/status/"):
                return self._status(path.removeprefix("/status/"))
            if path.startswith("/redirect/"):
                return self._redirect(path.removeprefix("/redirect/"))
            handler = self._routes.get(path)
            if handler is None:
                return Response.text("not found\n", 404)
            return await handler(self, request, reader)
        except BadRequest as exc:
            return Response.text(str(exc) + "\n", exc.status)

    # -- endpoints -----------------------------------------------------------

    @staticmethod
    def _status(code_text: str) -> Response:
        if not code_text.isdigit() or not 200 <= int(code_text) <= 599:
            raise BadRequest(400, "status must be 200..599")
        return Response(int(code_text))

    @staticmethod
    def _redirect(n_text: str) -> Response:
        if not n_text.isdigit():
            raise BadRequest(400, "bad redirect count")
        n = int(n_text)
        if n == 0:
            return Response.text("done")
        return Response(302, headers=[("Location", f"/redirect/{n - 1}")])

    async def _redirect_to(self, request: Request, reader) -> Response:
        url = request.arg("url")
        if url is None:
            raise BadRequest(400, "url required")
        status = _int_arg(request, "status", 302)
        return Response(status, headers=[("Location", url)])

    async def _set_cookie(self, request: Request, reader) -> Response:
        headers = [("Set-Cookie", f"{k}={v}; Path=/") for k, v in request.args]
        response = Response.text("cookies set\n")
        response.headers += headers
        return response

    async def _cookies(self, request: Request, reader) -> Response:
        values = request.header_values("cookie")
        return Response.json("; ".join(values) if values else None)

    async def _slow(self, request: Request, reader) -> Response:
        try:
            delay = float(request.arg("delay", "1"))
        except ValueError:
            raise BadRequest(400, "bad delay") from None
        await asyncio.sleep(delay)
        return Response.text("slow")

    async def _bytes(self, request: Request, reader) -> Response:
        n = _int_arg(request, "n", 1024)
        seed = request.arg("seed", "0")
        response = Response(200, pseudo_random_bytes(n, seed))
        response.headers.append(("Content-Type", "application/octet-stream"))
        response.chunked = request.arg("chunked") in ("1", "true", "yes")
        return response

    async def _nul(self, request: Request, reader) -> Response:
        return Response(200, NUL_BODY, [("Content-Type", "application/octet-stream")])

    async def _headers_latin1(self, request: Request, reader) -> Response:
        return Response(200, b"latin1\n", [("X-Latin1", b"caf\xe9")])

    async def _repeat_header(self, request: Request, reader) -> Response:
        return Response(200, b"repeat\n", [("X-Multi", "a"), ("X-Multi", "b")])

    async def _continue(self, request: Request, reader) -> Response:
        payload = request.echo()
        payload["interim_sent"] = request.interim_sent
        return Response.json(payload)

    async def _sleep_forever(self, request: Request, reader: asyncio.StreamReader) -> None:
        # Discard anything else the client sends; return on EOF or reset.
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        return None

    async def _close(self, request: Request, reader) -> Response:
        response = Response.text("closing\n")
        response.close = True
        return response

    _routes = {
        "/redirect-to": _redirect_to,
        "/set-cookie": _set_cookie,
        "/cookies": _cookies,
        "/slow": _slow,
        "/bytes": _bytes,
        "/nul": _nul,
        "/headers-latin1": _headers_latin1,
        "/repeat-header": _repeat_header,
        "/continue": _continue,
        "/sleep-forever": _sleep_forever,
        "/close": _close,
    }
