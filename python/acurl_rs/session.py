"""`CurlWrapper` and `Session`: acurl's API over the native engine.

The native module moves bytes; this module builds one request from acurl-style keyword
arguments (each checked by `_arguments`, the transfer settings by `_options`), follows redirects
the way acurl did (one transfer per hop, a response callback per hop) and keeps credentials on
the host they were meant for.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self
from urllib.parse import quote, urlencode, urlsplit

from . import _acurl_rs
from ._arguments import (
    _UNSET,
    ArgumentError,
    _basic_auth,
    _body,
    _check_limits,
    _header_pairs,
    _method_from,
    _request_cookie_lines,
)
from ._options import _TransferOptions
from .cookies import Cookie, _Cookie, _SentCookies, parse_cookie_string
from .errors import AcurlError, RequestError, UnsupportedProtocolError
from .response import _Response

# ArgumentError is defined with the checks that raise it (_arguments.py) and public as
# acurl_rs.ArgumentError; it stays importable from here too.
__all__ = ["ArgumentError", "CurlWrapper", "Session"]

_SCOPES = frozenset({"session", "wrapper"})
_TLS_SESSIONS = frozenset({"wrapper", "session", "off"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Headers that carry credentials: never sent on to another origin by a redirect.
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_BODY_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_DEFAULT_RETRIES = 2
_TIMEOUT = _acurl_rs.CURLE_OPERATION_TIMEDOUT
_OTHER_THREAD = (
    "acurl_rs objects belong to the thread of their event loop; make a CurlWrapper and "
    "sessions in each thread that runs a loop"
)
_METHODS = {m: m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}
_HTTP_PREFIXES = ("http://", "https://")
# curl's test for a URL that names its scheme (lib/urlapi.c Curl_is_absolute_url, guessing on).
_HAS_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")


ResponseCallback = Callable[[_Response], Any]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


class _Closable:
    """close(), `closed` and both context-manager forms, for objects whose native side
    (`_native`, made lazily) fails its requests in flight and frees curl when closed."""

    _native: Any
    _closed: bool

    def close(self) -> None:
        self._closed = True
        if self._native is not None:
            self._native.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class CurlWrapper(_Closable):
    """One libcurl multi handle for one asyncio event loop (acurl's `CurlWrapper`).

    `loop=None` binds to the loop running when the first session is used.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        max_connects: int = 100,
        *,
        max_host_connections: int = 0,
        max_total_connections: int = 0,
    ) -> None:
        self._limits = _check_limits(
            max_connects=max_connects,
            max_host_connections=max_host_connections,
            max_total_connections=max_total_connections,
        )
        # Checked options of the sessions made so far, by their settings: a load test makes a
        # session per journey, nearly always with the same settings.
        self._options_cache: dict[tuple[Any, ...], _TransferOptions] = {}
        self._native: _acurl_rs.NativeWrapper | None = None
        self._thread = 0
        self._closed = False
        if loop is not None:
            self._bind(loop)

    def _bind(self, loop: asyncio.AbstractEventLoop | None = None) -> _acurl_rs.NativeWrapper:
        if self._native is None:
            if self._closed:
                from .errors import SessionClosedError

                raise SessionClosedError("the CurlWrapper is closed")
            if loop is None:
                loop = asyncio.get_running_loop()
            self._native = _acurl_rs.NativeWrapper(loop, *self._limits)
            self._thread = threading.get_ident()
        elif threading.get_ident() != self._thread:
            raise RuntimeError(_OTHER_THREAD)
        return self._native

    def _session_options(self, **settings: Any) -> _TransferOptions:
        """The checked options for a session with these settings (`_TransferOptions.checked`),
        made once per wrapper.

        The CA bundle (verify=True) and the proxy variables are therefore read when the first
        session with these settings is made; a new CurlWrapper sees changes to them.
        """
        key = tuple(os.fspath(v) if isinstance(v, os.PathLike) else v for v in settings.values())
        try:
            cached = self._options_cache.get(key)
        except TypeError:  # an unhashable (so invalid) value: let the checks say what is wrong
            cached = None
        if cached is None:
            cached = _TransferOptions.checked(**settings)
            if len(self._options_cache) < 64:
                self._options_cache[key] = cached
        return cached

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return None if self._native is None else self._native.event_loop

    def session(
        self,
        http_version: str = "auto",
        *,
        connection_scope: str = "wrapper",
        tls_sessions: str = "wrapper",
        verify: bool | str | os.PathLike[str] = True,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        max_body_size: int | None = None,
        retries: int = _DEFAULT_RETRIES,
        _share_lock_callbacks: bool = True,
    ) -> Session:
        """A new session: its own cookie jar; connections, DNS cache and TLS sessions shared
        with the wrapper's other sessions ("wrapper" scope, acurl's model, the default), or
        its own connections and DNS cache ("session" scope: one virtual user's pool).

        `tls_sessions` says where new TLS connections find sessions to resume: "wrapper" (the
        wrapper's cache: a new user resumes instead of a full handshake), "session" (the
        session's own cache) or "off" (every connection a full handshake)."""
        return Session(
            self,
            http_version=http_version,
            connection_scope=connection_scope,
            tls_sessions=tls_sessions,
            verify=verify,
            timeout=timeout,
            connect_timeout=connect_timeout,
            headers=headers,
            max_body_size=max_body_size,
            retries=retries,
            share_lock_callbacks=_share_lock_callbacks,
        )


class Session(_Closable):
    """One virtual user: a libcurl share handle (cookies, and in "session" scope connections
    and DNS) and acurl's request coroutines."""

    # What `response.request.cookies` is worked out from: the jar as last read, and counters
    # telling when it may have changed since (class defaults until a request sets them).
    _jar_version = 0
    _jar_seen = 0
    _jar_snapshot: list[str] = []  # replaced, never mutated
    _in_flight = 0

    def __init__(
        self,
        wrapper: CurlWrapper,
        *,
        http_version: str = "auto",
        connection_scope: str = "wrapper",
        tls_sessions: str = "wrapper",
        verify: Any = True,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        headers: Any = None,
        max_body_size: int | None = None,
        retries: int = _DEFAULT_RETRIES,
        share_lock_callbacks: bool = True,
    ) -> None:
        if not isinstance(wrapper, CurlWrapper):
            raise ArgumentError("Session needs a CurlWrapper")
        if connection_scope not in _SCOPES:
            raise ValueError(f"Invalid connection_scope: {connection_scope}")
        if tls_sessions not in _TLS_SESSIONS:
            raise ValueError(f"Invalid tls_sessions: {tls_sessions}")
        self._wrapper = wrapper
        self._scope = connection_scope
        self._tls_sessions = tls_sessions
        self._lock_callbacks = bool(share_lock_callbacks)
        self._defaults = wrapper._session_options(
            timeout=timeout,
            connect_timeout=connect_timeout,
            verify=verify,
            http_version=http_version,
            max_body_size=max_body_size,
            retries=retries,
        )
        self.headers: dict[str, str] = dict(_header_pairs(headers))
        self.response_callback: ResponseCallback | None = None
        self._native: _acurl_rs.NativeSession | None = None
        self._native_ref: weakref.ref[_acurl_rs.NativeSession] | None = None
        self._closed = False
        if wrapper._native is not None:
            self._open()

    def _open(self) -> _acurl_rs.NativeSession:
        native = self._native
        if native is None:
            if self._closed:
                from .errors import SessionClosedError

                raise SessionClosedError("the session is closed")
            native = _acurl_rs.NativeSession(
                self._wrapper._bind(), self._scope, self._lock_callbacks, self._tls_sessions
            )
            self._native = native
            self._native_ref = weakref.ref(native)
        return native

    # acurl API ---------------------------------------------------------------------------
    # get() and friends return request()'s coroutine rather than wrapping it in another one:
    # `await session.get(url)` reads the same and costs one coroutine less per request.
    def set_response_callback(self, callback: ResponseCallback | None) -> None:
        """`callback(response)` runs after every completed transfer, each redirect hop too."""
        self.response_callback = callback

    def get(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, _Response]:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, _Response]:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, _Response]:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, _Response]:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, _Response]:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, _Response]:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, _Response]:
        return self.request("OPTIONS", url, **kwargs)

    async def request(
        self,
        method: str | bytes,
        url: str,
        *,
        headers: Any = (),
        cookies: Mapping[str, str | Cookie] | None = None,
        auth: tuple[str, str] | None = None,
        data: str | bytes | None = None,
        json: Any = None,
        cert: tuple[str, str] | None = None,
        allow_redirects: bool = True,
        max_redirects: int = 5,
        params: Any = None,
        timeout: float | None = _UNSET,
        connect_timeout: float | None = _UNSET,
        verify: Any = _UNSET,
        http_version: str | None = None,
        max_body_size: int | None = _UNSET,
        retries: int = _UNSET,
    ) -> _Response:
        """Sends one request (following redirects as acurl did) and returns the response."""
        # The common case (str method and URL, session defaults) takes the fewest steps: this
        # runs once per request of a load test.
        if type(method) is not str:
            method = _method_from(method)
        method = _METHODS.get(method) or method.upper()
        if type(url) is not str:
            raise ArgumentError("url must be a string")
        if not url.startswith(_HTTP_PREFIXES) and not _HAS_SCHEME.match(url):
            # acurl handed "host/path" to curl, which took it as http://; curl's guess of other
            # protocols from the host name ("ftp.", "imap.", ...) is not followed.
            url = "http://" + url
        if not url.isascii():
            # A request-target is ASCII: send non-ASCII text percent-encoded as UTF-8.
            url = "".join(c if c.isascii() else quote(c) for c in url)
        if params:
            query = urlencode(params, doseq=True)
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        pairs = list(self.headers.items()) if self.headers else []
        if headers:
            request_pairs = _header_pairs(headers)
            overridden = {n.lower() for n, _ in request_pairs}
            pairs = [p for p in pairs if p[0].lower() not in overridden] + request_pairs
        # Checked now, put in the jar once the first transfer is accepted (see below).
        jar_lines = _request_cookie_lines(url, cookies) if cookies else None
        if auth is not None:
            # Sent as a header, which `_next_hop` drops on a redirect to another origin.
            pairs.append(("Authorization", _basic_auth(auth)))
        body = _body(data, json, pairs) if data is not None or json is not None else None
        if type(max_redirects) is not int:
            raise ArgumentError("max_redirects must be an int")
        options = self._defaults
        if not (
            timeout is _UNSET
            and connect_timeout is _UNSET
            and verify is _UNSET
            and http_version is None
            and max_body_size is _UNSET
            and retries is _UNSET
            and cert is None
        ):
            options = options.overridden(
                timeout, connect_timeout, verify, http_version, max_body_size, retries, cert
            )
        native = self._native or self._open()
        if threading.get_ident() != self._wrapper._thread:
            raise RuntimeError(_OTHER_THREAD)
        history: list[_Response] = []
        while True:
            # One hop: a transfer, sent again while it is safe to retry (`_safe_to_retry`).
            # Inlined rather than a helper coroutine: this runs once per request of a load test.
            # "Name;" is curl's spelling of an empty value ("Name:" would remove the header).
            header_lines = (
                [f"{n}: {v}" if v.strip(" \t") else f"{n};" for n, v in pairs] if pairs else []
            )
            retries = 0
            while True:
                start_us = time.time_ns() // 1000
                future, token = native.start(method, url, header_lines, body, None, options.native)
                if jar_lines:
                    # curl reads the jar when it writes the request, on a later turn of the
                    # loop, so cookies stored now go with this transfer; a request refused by
                    # start() stores none.
                    try:
                        for line in jar_lines:
                            native.cookie_command(line)
                    except BaseException:
                        native.cancel(token)
                        raise
                    jar_lines = None
                    self._jar_version += 1
                if self._jar_version and (self._jar_seen != self._jar_version or self._in_flight):
                    # The jar as this transfer finds it, for `response.request.cookies`; read
                    # again only when it may have changed (a Set-Cookie, a cookie command, a
                    # failed transfer, or another transfer of this session under way), and
                    # never while nothing can have put a cookie in it (version 0).
                    self._jar_snapshot = native.cookie_lines()
                    self._jar_seen = self._jar_version
                jar = self._jar_snapshot
                self._in_flight += 1
                try:
                    raw = await future
                except asyncio.CancelledError:
                    self._jar_version += 1
                    native.cancel(token)
                    raise
                except AcurlError as exc:
                    self._jar_version += 1  # its headers may have set cookies
                    if exc.code == _TIMEOUT and options.http_version != "1.1" and not native.closed:
                        # An HTTP/2 connection survives a stream's timeout in curl's pool even
                        # when its peer stopped reading; start this user's pool afresh.
                        native.recycle_connections()
                    if retries < options.retries and _safe_to_retry(exc, method):
                        retries += 1
                        continue
                    exc.retries = retries
                    raise
                finally:
                    self._in_flight -= 1
                break
            if b"set-cookie" in raw.header.lower():
                self._jar_version += 1
            sent = _SentCookies(jar, url, start_us / 1e6) if jar else ()
            response = _Response(raw, None, start_us, self._native_ref, retries)
            response._request = (method, url, pairs, sent, auth, body, options.cert)
            callback = self.response_callback
            if callback is not None:
                callback(response)
            target = response.redirect_url if allow_redirects else None
            if target is None or not 300 <= response.status_code < 400:
                response.history = history
                return response
            if len(history) >= max_redirects:
                raise RequestError("Max Redirects")
            history.append(response)
            method, body, pairs, auth = _next_hop(
                response.status_code, url, target, method, body, pairs, auth
            )
            url = target

    # Cookies -----------------------------------------------------------------------------
    def get_cookie_list(self) -> list[str]:
        """The jar as Netscape cookie-file lines (libcurl's CURLINFO_COOKIELIST)."""
        return self._open().cookie_lines()

    def cookies(self) -> dict[str, str]:
        """The whole jar, name -> value (acurl's `Session.cookies()`)."""
        return {c.name: c.value for c in map(parse_cookie_string, self.get_cookie_list())}

    def add_cookie(self, cookie: _Cookie | Cookie | str | bytes) -> None:
        """Puts a cookie in the jar: a `_Cookie`, a `Cookie`, or a Netscape / Set-Cookie line
        (str, or the bytes `_Cookie.format()` returns)."""
        if isinstance(cookie, _Cookie):
            line = cookie._line()
        elif isinstance(cookie, Cookie):
            line = _Cookie(
                False, cookie.domain, True, "/", False, 0, cookie.name, cookie.value
            )._line()
        elif isinstance(cookie, str):
            line = cookie
        elif isinstance(cookie, (bytes, bytearray)):
            line = parse_cookie_string(cookie)._line()
        else:
            raise ArgumentError("cookie must be a _Cookie, Cookie, str or bytes")
        self._open().cookie_command(line)
        self._jar_version += 1

    def erase_all_cookies(self) -> None:
        self._open().cookie_command("ALL")
        self._jar_version += 1

    def erase_session_cookies(self) -> None:
        self._open().cookie_command("SESS")
        self._jar_version += 1


def _safe_to_retry(exc: AcurlError, method: str) -> bool:
    """A request is sent again only if the server provably never answered it (the connection
    died or the stream was refused before any response byte: `exc.retryable`) and repeating it
    is harmless (an idempotent method, RFC 9110 section 9.2.2)."""
    return exc.retryable and method in _IDEMPOTENT_METHODS


def _next_hop(
    status: int,
    url: str,
    target: str,
    method: str,
    body: bytes | None,
    pairs: list[tuple[str, str]],
    auth: tuple[str, str] | None,
) -> tuple[str, bytes | None, list[tuple[str, str]], Any]:
    """What the next hop sends: acurl's method rules, and no credentials to another origin."""
    scheme = urlsplit(target).scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UnsupportedProtocolError(
            _acurl_rs.CURLE_UNSUPPORTED_PROTOCOL,
            f"redirect to {scheme or 'a relative'}:// URL refused: only http and https are allowed",
        )
    if status in (301, 302, 303) and method != "HEAD":
        method, body = "GET", None
        pairs = [p for p in pairs if p[0].lower() not in _BODY_HEADERS]
    if _origin(target) != _origin(url):
        pairs = [p for p in pairs if p[0].lower() not in _CREDENTIAL_HEADERS]
        auth = None  # `cookies=` live in the jar for their host only: nothing to drop here
    return method, body, pairs, auth
