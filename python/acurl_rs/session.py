"""`CurlWrapper` and `Session`: acurl's API over the native engine.

The native module moves bytes; this module turns acurl-style keyword arguments into one checked
request, follows redirects the way acurl did (one transfer per hop, a response callback per hop)
and keeps credentials on the host they were meant for.
"""

from __future__ import annotations

import asyncio
import base64
import json as _json
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
from .cabundle import find_ca_bundle
from .cookies import Cookie, _Cookie, _SentCookies, parse_cookie_string
from .errors import AcurlError, RequestError, UnsupportedProtocolError
from .response import _Response

__all__ = ["CurlWrapper", "Session"]

_HTTP_VERSIONS = frozenset({"auto", "1.1", "2", "2-prior-knowledge"})
_SCOPES = frozenset({"session", "wrapper"})
_TLS_SESSIONS = frozenset({"wrapper", "session", "off"})
_USER_AGENT = f"acurl_rs/{_acurl_rs.__version__}"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Headers that carry credentials: never sent on to another origin by a redirect.
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_BODY_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_DEFAULT_RETRIES = 2
_TIMEOUT = _acurl_rs.CURLE_OPERATION_TIMEDOUT
# What libcurl reads to pick a proxy; when none is set, curl is told so once per session.
_PROXY_VARIABLES = tuple(
    v for name in ("http_proxy", "https_proxy", "all_proxy") for v in (name, name.upper())
)
_OTHER_THREAD = (
    "acurl_rs objects belong to the thread of their event loop; make a CurlWrapper and "
    "sessions in each thread that runs a loop"
)
_METHODS = {m: m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}
_HTTP_PREFIXES = ("http://", "https://")
# curl's test for a URL that names its scheme (lib/urlapi.c Curl_is_absolute_url, guessing on).
_HAS_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")


class ArgumentError(TypeError, ValueError):
    """A wrongly typed argument: both a TypeError and (as acurl raised) a ValueError."""


_UNSET: Any = object()
ResponseCallback = Callable[[_Response], Any]


def _check_http_version(value: Any) -> str:
    if value not in _HTTP_VERSIONS:
        raise ValueError(f"Invalid http_version: {value}")
    return value


def _check_seconds(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentError(
            f"{name} must be a number of seconds or None, not {type(value).__name__}"
        )
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return float(value)


def _check_max_body(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError("max_body_size must be an int or None")
    if value <= 0:
        raise ValueError("max_body_size must be positive")
    return value


def _method_from(method: Any) -> str:
    if isinstance(method, bytes):
        return method.decode("ascii", "replace")
    if not isinstance(method, str):
        raise ArgumentError("method must be a str")
    return str(method)


def _basic_auth(auth: Any) -> str:
    """acurl's `auth=(user, password)` as an HTTP Basic Authorization value (RFC 7617)."""
    if not (type(auth) is tuple and len(auth) == 2 and all(type(a) is str for a in auth)):
        raise ArgumentError(f"auth must be a 2-tuple of strings but it was: {auth!r}")
    user, password = auth
    if any((c < " " and c != "\t") or c == "\x7f" for c in user + password):
        raise ValueError("auth must not contain control characters")
    if ":" in user:
        raise ValueError("auth user must not contain ':' (RFC 7617)")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _check_retries(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError("retries must be an int")
    if value < 0:
        raise ValueError(f"retries must be >= 0, got {value}")
    return value


def _resolve_verify(verify: Any) -> tuple[bool, str | None, str | None]:
    """verify=True|False|path -> (verify, ca_file, ca_path); True finds the system's CAs."""
    if verify is True:
        ca_file, ca_path = find_ca_bundle()
        return True, ca_file, ca_path
    if verify is False:
        return False, None, None
    if isinstance(verify, (str, os.PathLike)):
        path = os.fspath(verify)
        if os.path.isdir(path):
            return True, None, path
        if os.path.isfile(path):
            return True, path, None
        raise ValueError(f"verify path does not exist: {path!r}")
    raise ArgumentError(f"verify must be True, False or a CA bundle path, not {verify!r}")


def _header_pairs(headers: Any) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = []
    try:
        for name, value in items:
            if not isinstance(name, str) or not isinstance(value, str):
                raise ArgumentError(f"header names and values must be str: {(name, value)!r}")
            pairs.append((name, value))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ArgumentError):
            raise
        raise ArgumentError(
            "headers must be a mapping or an iterable of (name, value) pairs"
        ) from exc
    return pairs


# libcurl drops a cookie whose name or value holds a control octet (lib/cookie.c
# invalid_octets); such a cookie is refused here instead.
_COOKIE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Prefixes libcurl enforces (case-sensitively): both need a Secure cookie, so an https URL.
_SECURE_PREFIXES = ("__Secure-", "__Host-")


def _request_cookie_lines(url: str, cookies: Any) -> list[str]:
    """A request's ``cookies=`` as jar lines for the request URL's host.

    acurl put them in the session's jar, so they were sent again on later requests to that
    host; so does acurl_rs, but host-only (never to subdomains or other hosts, so a redirect
    elsewhere does not carry them), path "/", a session cookie (gone with
    `erase_session_cookies`), and Secure when the URL is https (not re-sent over plain http).
    A `Cookie` value gives the name and value, as in acurl; its domain must be the host or one
    of its parents. Everything is checked before the jar is touched.
    """
    if not isinstance(cookies, Mapping):
        raise ArgumentError("cookies must be a dict of name -> str or Cookie")
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ValueError(f"url has no host: {url!r}")
    secure = parts.scheme.lower() == "https"
    lines = []
    for key, value in cookies.items():
        name = key
        if isinstance(value, (Cookie, _Cookie)):
            domain = value.domain.lstrip(".").lower()
            if not (host == domain or host.endswith("." + domain)):
                raise ValueError(
                    f"cookie {value.name!r} is for domain {value.domain!r}, not for this "
                    f"request's host {host!r}: put it in the jar with session.add_cookie()"
                )
            name, value = value.name, value.value
        if not isinstance(name, str) or not isinstance(value, str):
            raise ArgumentError(f"cookie names and values must be str: {(name, value)!r}")
        if not name or any(c in name for c in "=; \t") or ";" in value:
            raise ValueError(f"invalid cookie {name!r}={value!r}")
        if _COOKIE_CONTROL.search(name) or _COOKIE_CONTROL.search(value):
            raise ValueError(f"cookie must not contain control characters: {name!r}={value!r}")
        if not (name + value).isascii():
            try:
                (name + value).encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"cookie is not valid text: {name!r}={value!r}") from None
        if name.startswith(_SECURE_PREFIXES) and not secure:
            raise ValueError(f"cookie {name!r}: its prefix needs an https URL")
        lines.append(_Cookie(False, host, False, "/", secure, 0, name, value)._line())
    return lines


def _body(data: Any, json: Any, pairs: list[tuple[str, str]]) -> bytes | None:
    if data is not None and json is not None:
        raise ValueError("use only one or none of data or json")
    if json is not None:
        if not any(n.lower() == "content-type" for n, _ in pairs):
            pairs.append(("Content-Type", "application/json"))
        # NaN and Infinity are not JSON: refuse them rather than send what servers reject.
        return _json.dumps(json, allow_nan=False).encode()
    if data is None:
        return None
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise ArgumentError("data must be str or bytes")


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
        for name, value in (
            ("max_connects", max_connects),
            ("max_host_connections", max_host_connections),
            ("max_total_connections", max_total_connections),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ArgumentError(f"{name} must be an int")
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self._limits = (max_connects, max_host_connections, max_total_connections)
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

    def _session_options(
        self,
        timeout: Any,
        connect_timeout: Any,
        verify: Any,
        http_version: Any,
        max_body_size: Any,
        retries: Any,
    ) -> _TransferOptions:
        """The checked options for a session with these settings, made once per wrapper.

        The CA bundle (verify=True) and the proxy variables are therefore read when the first
        session with these settings is made; a new CurlWrapper sees changes to them.
        """
        key = (
            timeout,
            connect_timeout,
            os.fspath(verify) if isinstance(verify, os.PathLike) else verify,
            http_version,
            max_body_size,
            retries,
        )
        try:
            cached = self._options_cache.get(key)
        except TypeError:  # an unhashable (so invalid) value: let the checks say what is wrong
            cached = None
        if cached is None:
            cached = _TransferOptions(
                timeout=_check_seconds("timeout", timeout),
                connect_timeout=_check_seconds("connect_timeout", connect_timeout),
                verify=_resolve_verify(verify),
                http_version=_check_http_version(http_version),
                max_body_size=_check_max_body(max_body_size),
                cert=None,
                retries=_check_retries(retries),
            )
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
            timeout, connect_timeout, verify, http_version, max_body_size, retries
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


class _TransferOptions:
    __slots__ = (
        "cert",
        "connect_timeout",
        "http_version",
        "max_body_size",
        "native",
        "retries",
        "timeout",
        "verify",
    )

    def __init__(
        self,
        *,
        timeout: float | None,
        connect_timeout: float | None,
        verify: tuple[bool, str | None, str | None],
        http_version: str,
        max_body_size: int | None,
        cert: tuple[str, str] | None,
        retries: int,
    ) -> None:
        self.retries = retries
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.verify = verify
        self.http_version = http_version
        self.max_body_size = max_body_size
        self.cert = cert
        verify_on, ca_file, ca_path = verify
        # Checked and converted once, then handed to every transfer these options govern.
        self.native = _acurl_rs.TransferOptions(
            timeout,
            connect_timeout,
            verify_on,
            ca_file,
            ca_path,
            http_version,
            max_body_size,
            _USER_AGENT,
            cert,
            not any(os.environ.get(name) for name in _PROXY_VARIABLES),
        )

    def overridden(
        self,
        timeout: Any,
        connect_timeout: Any,
        verify: Any,
        http_version: Any,
        max_body_size: Any,
        retries: Any,
        cert: Any,
    ) -> _TransferOptions:
        """These options with a request's own values (checked) in place of the session's."""
        if cert is not None:
            if not (
                isinstance(cert, tuple)
                and len(cert) == 2
                and all(isinstance(c, (str, os.PathLike)) for c in cert)
            ):
                raise ArgumentError(
                    f"cert must be a (key_path, cert_path) tuple but it was: {cert!r}"
                )
            cert = (os.fspath(cert[0]), os.fspath(cert[1]))
        return _TransferOptions(
            timeout=self.timeout if timeout is _UNSET else _check_seconds("timeout", timeout),
            connect_timeout=self.connect_timeout
            if connect_timeout is _UNSET
            else _check_seconds("connect_timeout", connect_timeout),
            verify=self.verify if verify is _UNSET else _resolve_verify(verify),
            http_version=self.http_version
            if http_version is None
            else _check_http_version(http_version),
            max_body_size=self.max_body_size
            if max_body_size is _UNSET
            else _check_max_body(max_body_size),
            cert=cert,
            retries=self.retries if retries is _UNSET else _check_retries(retries),
        )


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
