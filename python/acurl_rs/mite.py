"""The mite ``mite_http`` journey decorator, backed by acurl_rs.

Behaves like ``mite_http`` from mite 2.11 (``mite_http/__init__.py``):

* one ``CurlWrapper`` per event loop (per distinct ``max_connects``; normally exactly one),
  created lazily on the first decorated journey that runs on that loop;
* a new ``Session`` for every journey run, exposed as ``ctx.http``;
* ``ctx.http.additional_metrics`` (a dict, kept for the whole journey run) is merged into
  every message the session sends;
* ``ctx.http.set_response_callback(cb)``: ``cb(response, additional_metrics)`` runs before
  the metrics of each hop are sent, so it can add per-request metrics;
* one ``http_metrics`` message per completed transfer, every redirect hop included, sent
  with ``ctx.send`` and mite's field names (see ``docs/MITE_NOTES.md``).

Additions over mite:

* ``http_metrics`` also carries ``http_version``, ``conn_id``, ``queue_time`` and
  ``tls_resumed`` (True/False for a new TLS connection, None for plain HTTP or a reused one);
* a request that fails with ``acurl_rs.AcurlError`` sends one ``http_error`` message
  (url, method, curl code, error category, error text, start time, known timings and the
  additional metrics) and then re-raises the error;
* the session is closed when the decorated journey returns or raises; a nested decorated
  journey gets its own session and the outer ``ctx.http`` is restored afterwards;
* options: ``@mite_http(max_connects=..., http_version=..., connection_scope=...,
  tls_sessions=..., verify=..., **other_session_options)``, as well as bare ``@mite_http``.
  The default ``connection_scope`` is "wrapper", acurl's model: the loop's wrapper owns the
  connections, DNS and TLS caches its journeys share; ``connection_scope="session"`` gives each
  journey its own pool (a new user's first TLS connection then resumes from the wrapper's TLS
  session cache unless ``tls_sessions`` says otherwise).

This module does not import mite: ``ctx`` only needs ``send(type, **fields)`` and must
accept an ``http`` attribute.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from functools import wraps
from typing import Any, TypeVar

__all__ = ["MiteHttpSession", "close_wrappers", "create_http_cookie", "mite_http"]

_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])

# (response attribute, message field): the timing/connection facts that an
# ``http_error`` carries when the exception object knows them.
_ERROR_DETAILS = (
    ("namelookup_time", "dns_time"),
    ("connect_time", "connect_time"),
    ("appconnect_time", "tls_time"),
    ("pretransfer_time", "transfer_start_time"),
    ("starttransfer_time", "first_byte_time"),
    ("total_time", "total_time"),
    ("queue_time", "queue_time"),
    ("primary_ip", "primary_ip"),
    ("conn_id", "conn_id"),
    ("http_version", "http_version"),
)


_acurl_error: type[Exception] | None = None


def _acurl_error_class() -> type[Exception]:
    global _acurl_error
    if _acurl_error is None:
        from . import AcurlError  # late: this module is imported by the package itself

        _acurl_error = AcurlError
    return _acurl_error


# ---------------------------------------------------------------------------
# one CurlWrapper per event loop
#
# The registry is thread-local: a loop, and the (unsendable) CurlWrapper bound to it,
# belong to one thread, so a wrapper is only ever closed or released by the thread
# that created it. Entries whose loop has been closed are dropped the next time this
# thread creates a wrapper.

_local = threading.local()


def _registry() -> dict[tuple[asyncio.AbstractEventLoop, int | None], Any]:
    registry: dict[tuple[asyncio.AbstractEventLoop, int | None], Any] | None
    registry = getattr(_local, "wrappers", None)
    if registry is None:
        registry = _local.wrappers = {}
    return registry


def _wrapper_for(loop: asyncio.AbstractEventLoop, max_connects: int | None) -> Any:
    registry = _registry()
    key = (loop, max_connects)
    wrapper = registry.get(key)
    if wrapper is None or wrapper.closed:  # closed by hand: the loop gets a new one
        for stale in [k for k in registry if k[0].is_closed()]:
            old = registry.pop(stale)
            with suppress(Exception):
                old.close()
        from . import CurlWrapper

        if max_connects is None:
            wrapper = CurlWrapper(loop)
        else:
            wrapper = CurlWrapper(loop, max_connects=max_connects)
        registry[key] = wrapper
    return wrapper


def close_wrappers(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Close and forget this thread's wrappers for ``loop`` (default: the running loop,
    or every loop of this thread when none is running). Journeys that run afterwards
    create a fresh wrapper."""
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
    registry = _registry()
    for key in [k for k in registry if loop is None or k[0] is loop]:
        registry.pop(key).close()


# ---------------------------------------------------------------------------
# the per-journey session


_METHOD_BYTES: dict[str, bytes] = {}


def _method_bytes(r: Any) -> bytes:
    """`r.request.method` (bytes, as mite sends it) without building the Request object."""
    request = getattr(r, "_request", None)
    if type(request) is tuple and type(request[0]) is str:
        method = _METHOD_BYTES.get(request[0])
        if method is None:
            method = _METHOD_BYTES[request[0]] = request[0].encode("ascii", "replace")
        return method
    return r.request.method


def _response_metrics(r: Any) -> dict[str, Any]:
    # Field names and values exactly as mite_http's response callback sends them,
    # then the acurl_rs additions.
    return dict(
        start_time=r.start_time,
        effective_url=r.url,
        response_code=r.status_code,
        dns_time=r.namelookup_time,
        connect_time=r.connect_time,
        tls_time=r.appconnect_time,
        transfer_start_time=r.pretransfer_time,
        first_byte_time=r.starttransfer_time,
        total_time=r.total_time,
        primary_ip=r.primary_ip,
        method=_method_bytes(r),
        download_size=r.download_size,
        http_version=r.http_version,
        conn_id=r.conn_id,
        queue_time=r.queue_time,
        tls_resumed=r.tls_resumed,
    )


class MiteHttpSession:
    """What a decorated journey sees as ``ctx.http``: an ``acurl_rs.Session`` that reports
    to the journey's context. Attributes it does not define come from the session."""

    def __init__(self, session: Any, wrapper: Any, ctx: Any) -> None:
        self._session = session
        self._wrapper = wrapper
        self._ctx = ctx
        self._callback: Callable[[Any, dict[str, Any]], Any] | None = None
        self.additional_metrics: dict[str, Any] = {}
        # The session holds only a weak reference back: no session <-> wrapper cycle, so
        # both are freed by reference counting, in the thread that owns them.
        session.set_response_callback(_forward_to(weakref.ref(self)))

    def __getattr__(self, name: str) -> Any:
        session = self.__dict__.get("_session")
        if session is None:
            raise AttributeError(name)
        return getattr(session, name)

    def __repr__(self) -> str:
        return f"<MiteHttpSession {self._session!r}>"

    @property
    def session(self) -> Any:
        """The underlying ``acurl_rs.Session``."""
        return self._session

    @property
    def wrapper(self) -> Any:
        """The ``acurl_rs.CurlWrapper`` shared by the journeys of this event loop."""
        return self._wrapper

    def set_response_callback(self, cb: Callable[[Any, dict[str, Any]], Any] | None) -> None:
        """``cb(response, additional_metrics)`` runs for every hop, before its metrics are sent."""
        self._callback = cb

    @property
    def response_callback(self) -> Callable[[Any, dict[str, Any]], Any] | None:
        return self._callback

    @response_callback.setter
    def response_callback(self, cb: Callable[[Any, dict[str, Any]], Any] | None) -> None:
        self._callback = cb

    def _on_response(self, r: Any) -> None:
        if self._callback is not None:
            self._callback(r, self.additional_metrics)
        # Same call shape as mite: a key of additional_metrics that clashes with a
        # metric field raises TypeError rather than silently replacing it.
        self._ctx.send("http_metrics", **_response_metrics(r), **self.additional_metrics)

    def _send_error(
        self, exc: BaseException, method: str | bytes, url: Any, start: float, elapsed: float
    ) -> None:
        details: dict[str, Any] = {}
        for attr, field in _ERROR_DETAILS:
            value = getattr(exc, attr, None)
            if value is not None:
                details[field] = value
        details.setdefault("total_time", elapsed)
        fields: dict[str, Any] = dict(
            start_time=int(start),
            url=getattr(exc, "url", None) or url,
            # bytes, like http_metrics' method (acurl's Request.method)
            method=method.upper() if isinstance(method, bytes) else method.upper().encode(),
            curl_code=getattr(exc, "code", None),
            error_category=getattr(exc, "category", "other"),
            error_message=str(exc),
            curl_message=getattr(exc, "curl_message", ""),
            ex_type=type(exc).__name__,
            elapsed_time=elapsed,
            **details,
        )
        # Unlike http_metrics (where a clash raises TypeError, as in mite), a clashing
        # additional metric must not replace the error it is reported with.
        for key, value in self.additional_metrics.items():
            if key != "type":
                fields.setdefault(key, value)
        self._ctx.send("http_error", **fields)

    # get() and friends return request()'s coroutine, as Session does: one coroutine per
    # request, not a chain of three.
    async def request(self, method: str | bytes, url: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await self._session.request(method, url, **kwargs)
        except Exception as exc:
            if isinstance(exc, _acurl_error_class()):
                elapsed = time.perf_counter() - t0
                self._send_error(exc, method, url, time.time() - elapsed, elapsed)
            raise

    def get(self, url: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("GET", url, **kwargs)

    def post(self, url: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("POST", url, **kwargs)

    def put(self, url: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        return self.request("OPTIONS", url, **kwargs)

    def close(self) -> None:
        self._session.close()


def _forward_to(ref: weakref.ref[MiteHttpSession]) -> Callable[[Any], None]:
    def on_response(response: Any) -> None:
        http = ref()
        if http is not None:
            http._on_response(response)

    return on_response


@asynccontextmanager
async def _journey_session(
    ctx: Any, max_connects: int | None, session_options: dict[str, Any]
) -> AsyncIterator[MiteHttpSession]:
    outer = getattr(ctx, "http", None)
    wrapper = _wrapper_for(asyncio.get_running_loop(), max_connects)
    http = MiteHttpSession(wrapper.session(**session_options), wrapper, ctx)
    ctx.http = http
    try:
        yield http
    finally:
        try:
            http.close()
        finally:
            if isinstance(outer, MiteHttpSession):
                ctx.http = outer
            else:
                # mite deletes the attribute; mite.test.http_spy depends on that
                with suppress(AttributeError):
                    del ctx.http


def mite_http(
    func: _F | None = None,
    *,
    max_connects: int | None = None,
    http_version: str | None = None,
    connection_scope: str | None = None,
    verify: Any = None,
    **session_options: Any,
) -> Any:
    """Give a mite journey ``ctx.http``, a fresh acurl_rs session for each run.

    Usable bare (``@mite_http``) or with options (``@mite_http(http_version="2")``).
    ``max_connects`` configures the loop's ``CurlWrapper``; ``http_version``,
    ``connection_scope``, ``verify`` and any other keyword are passed to
    ``CurlWrapper.session()``. Options left as ``None`` keep acurl_rs's defaults.
    """
    options: dict[str, Any] = dict(session_options)
    for name, value in (
        ("http_version", http_version),
        ("connection_scope", connection_scope),
        ("verify", verify),
    ):
        if value is not None:
            options[name] = value

    def decorate(journey: _F) -> _F:
        if not callable(journey):
            raise TypeError(f"mite_http decorates a journey function, not {journey!r}")

        @wraps(journey)
        async def run(ctx: Any, *args: Any, **kwargs: Any) -> Any:
            async with _journey_session(ctx, max_connects, options):
                return await journey(ctx, *args, **kwargs)

        return run  # type: ignore[return-value]

    if func is None:
        return decorate
    return decorate(func)


def create_http_cookie(ctx: Any, *args: Any, **kwargs: Any) -> Any:
    """mite's helper: ``acurl_rs.Cookie(*args, **kwargs)``."""
    from . import Cookie

    return Cookie(*args, **kwargs)
