"""The response a request resolves to: acurl's `_Response`, plus what libcurl knows beyond it."""

from __future__ import annotations

import json as _json
import operator
import warnings
import weakref
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from .request import Request
from .structures import CaseInsensitiveDict

if TYPE_CHECKING:
    from ._acurl_rs import NativeSession, RawResponse

# Plain values copied from libcurl's getinfo at completion, served straight from the native record.
_RAW_FIELDS = (
    "status_code",
    "url",
    "redirect_url",
    "primary_ip",
    "primary_port",
    "local_ip",
    "local_port",
    "http_version",
    "num_connects",
    "conn_id",
    "xfer_id",
    "upload_size",
    "download_size",
    "namelookup_time",
    "connect_time",
    "appconnect_time",
    "pretransfer_time",
    "starttransfer_time",
    "total_time",
    "queue_time",
    "tls_resumed",
    "body",
)


class _Response:
    """One completed HTTP exchange (one hop of a redirect chain).

    Everything libcurl reported is read once when the transfer finished, so a response keeps no
    curl handle alive; headers, text and cookies are decoded only when first asked for.
    """

    __slots__ = (
        "_header_block",
        "_headers",
        "_headers_tuple",
        "_raw",
        "_request",
        "_session",
        "history",
        "retries",
        "start_time_us",
    )

    # Declared for type checkers; served by the properties installed below.
    status_code: int
    url: str
    redirect_url: str | None
    primary_ip: str
    primary_port: int
    local_ip: str
    local_port: int
    http_version: str
    num_connects: int
    conn_id: int
    xfer_id: int
    upload_size: float
    download_size: float
    namelookup_time: float
    connect_time: float
    appconnect_time: float
    pretransfer_time: float
    starttransfer_time: float
    total_time: float
    queue_time: float
    tls_resumed: bool | None
    body: bytes

    def __init__(
        self,
        raw: RawResponse,
        request: Request | tuple[Any, ...] | None,
        start_time_us: int,
        session: weakref.ref[NativeSession] | None,
        retries: int = 0,
    ) -> None:
        self._raw = raw
        # A Request, or the arguments to build one when first asked for (most never are).
        self._request = request
        self.start_time_us = start_time_us
        # Weakly: a response may outlive its session, or be dropped on another thread, where
        # the thread-confined native session must not be released. One weakref per session.
        self._session = session
        self.retries = retries
        self.history: list[_Response] = []
        self._header_block: str | None = None
        self._headers: CaseInsensitiveDict | None = None
        self._headers_tuple: tuple[tuple[str, str], ...] | None = None

    @property
    def request(self) -> Request:
        """acurl's `Request` for this hop (method as bytes, headers, cookies, data, ...)."""
        request = self._request
        if not isinstance(request, Request):
            request = Request(*(request or ("GET", self.url, (), (), None, None, None)))
            self._request = request
        return request

    @property
    def start_time(self) -> int:
        """Seconds since the epoch when the request was sent (an int, as acurl had it)."""
        return self.start_time_us // 1_000_000

    @property
    def response_code(self) -> int:
        warnings.warn(
            "response_code is deprecated, use status_code", DeprecationWarning, stacklevel=2
        )
        return self._raw.status_code

    @property
    def header(self) -> str:
        """The raw header block of the final response (interim 1xx blocks dropped), latin-1."""
        if self._header_block is None:
            self._header_block = self._raw.header.decode("latin-1")
        return self._header_block

    def _parse_headers(self) -> None:
        pairs: list[tuple[str, str]] = []
        merged: dict[str, str] = {}
        for line in self.header.split("\r\n")[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                continue
            # Only SP and HTAB are whitespace here (RFC 9110 OWS): 0x85 or 0xA0 are data.
            name, value = name.strip(" \t"), value.strip(" \t")
            pairs.append((name, value))
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._headers_tuple = tuple(pairs)
        headers: CaseInsensitiveDict = CaseInsensitiveDict()
        dict.update(headers, merged)  # the keys are folded already
        self._headers = headers

    @property
    def headers(self) -> CaseInsensitiveDict:
        """Header names lower-cased; repeated headers joined with ", " (as acurl)."""
        if self._headers is None:
            self._parse_headers()
        assert self._headers is not None
        return self._headers

    @property
    def headers_tuple(self) -> tuple[tuple[str, str], ...]:
        """(name, value) pairs in received order and original case."""
        if self._headers_tuple is None:
            self._parse_headers()
        assert self._headers_tuple is not None
        return self._headers_tuple

    @property
    def reason(self) -> str:
        """The status line's reason phrase; HTTP/2 has none, so the standard phrase is used."""
        status_line = self.header.split("\r\n", 1)[0]
        parts = status_line.split(" ", 2)
        if len(parts) == 3 and parts[2].strip():
            return parts[2].strip()
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def encoding(self) -> str:
        """The charset from Content-Type, else "latin1" (acurl's rule)."""
        content_type = self.headers.get("content-type", "")
        for param in content_type.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip("\"'")
        return "latin1"

    @property
    def text(self) -> str:
        try:
            return self.body.decode(self.encoding, errors="replace")
        except LookupError:
            return self.body.decode("latin1")

    def json(self) -> Any:
        return _json.loads(self.body)

    @property
    def cookies(self) -> dict[str, str]:
        """The session's whole cookie jar, name -> value (as acurl), read when asked for."""
        session = None if self._session is None else self._session()
        if session is None or session.closed:
            return {}
        jar: dict[str, str] = {}
        for line in session.cookie_lines():
            fields = line.split("\t")
            if len(fields) == 7:
                jar[fields[5]] = fields[6]
        return jar

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 400

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status_code < 400 and self.redirect_url is not None

    def raise_for_status(self) -> None:
        from .errors import HTTPStatusError

        if self.status_code >= 400:
            error = HTTPStatusError(f"HTTP {self.status_code} {self.reason} for {self.url}")
            error.response = self
            raise error

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}] HTTP/{self.http_version} {self.url}>"


# attrgetter runs in C: reading `response.status_code` costs no Python frame.
for _name in _RAW_FIELDS:
    setattr(_Response, _name, property(operator.attrgetter(f"_raw.{_name}")))
del _name

Response = _Response
