"""Transfer options: a session's settings (or a request's own) checked once and converted to
the native `TransferOptions` that every transfer they govern is handed."""

from __future__ import annotations

import os
from typing import Any

from . import _acurl_rs
from ._arguments import (
    _UNSET,
    _check_cert,
    _check_http_version,
    _check_max_body,
    _check_retries,
    _check_seconds,
    _resolve_verify,
)

_USER_AGENT = f"acurl_rs/{_acurl_rs.__version__}"
# What libcurl reads to pick a proxy; when none is set, curl is told so once per session.
_PROXY_VARIABLES = tuple(
    v for name in ("http_proxy", "https_proxy", "all_proxy") for v in (name, name.upper())
)


class _TransferOptions:
    """The checked values (for requests that override one, and for `response.request`) and
    their native form, made once and cached per wrapper by `CurlWrapper._session_options`."""

    __slots__ = (
        "_overrides",
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
        self._overrides: dict[tuple[Any, ...], _TransferOptions] = {}
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

    @classmethod
    def checked(cls, **settings: Any) -> _TransferOptions:
        """A session's settings (`timeout`, `connect_timeout`, `verify`, `http_version`,
        `max_body_size`, `retries`), checked; verify=True finds the CA bundle now."""
        return cls(
            timeout=_check_seconds("timeout", settings["timeout"]),
            connect_timeout=_check_seconds("connect_timeout", settings["connect_timeout"]),
            verify=_resolve_verify(settings["verify"]),
            http_version=_check_http_version(settings["http_version"]),
            max_body_size=_check_max_body(settings["max_body_size"]),
            cert=None,
            retries=_check_retries(settings["retries"]),
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
        """These options with a request's own values (checked) in place of the session's.

        Made once per distinct set of overrides (a load test passes the same `timeout=` on
        every request): the checks, the CA look-up and the proxy variables are not redone."""
        values = (
            timeout,
            connect_timeout,
            os.fspath(verify) if isinstance(verify, os.PathLike) else verify,
            http_version,
            max_body_size,
            retries,
            cert,
        )
        # Typed, so that timeout=True (refused) never finds the entry of timeout=1.
        key = tuple((v.__class__, v) for v in values)
        try:
            cached = self._overrides.get(key)
        except TypeError:  # unhashable, so invalid: let the checks say what is wrong
            return self._overridden(values)
        if cached is None:
            cached = self._overridden(values)
            if len(self._overrides) < 64:
                self._overrides[key] = cached
        return cached

    def _overridden(self, values: tuple[Any, ...]) -> _TransferOptions:
        timeout, connect_timeout, verify, http_version, max_body_size, retries, cert = values
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
            cert=None if cert is None else _check_cert(cert),
            retries=self.retries if retries is _UNSET else _check_retries(retries),
        )
