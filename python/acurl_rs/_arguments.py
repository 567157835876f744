"""The caller's arguments checked, as acurl checked them: each helper turns one acurl-style
keyword into the value the request is built from, or raises `ArgumentError` (a wrong type) or
`ValueError` (a wrong value). Whether a value is safe on the wire (no CR, LF or NUL reaching
curl, only http and https) is the native module's rule (src/checks.rs), not repeated here.
"""

from __future__ import annotations

import base64
import json as _json
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .cabundle import find_ca_bundle
from .cookies import Cookie, _Cookie

__all__ = ["ArgumentError"]

_HTTP_VERSIONS = frozenset({"auto", "1.1", "2", "2-prior-knowledge"})

#: "Not given": a request keyword left to the session's setting (None is a value: no limit).
_UNSET: Any = object()


class ArgumentError(TypeError, ValueError):
    """A wrongly typed argument: both a TypeError and (as acurl raised) a ValueError."""


def _check_limits(**limits: Any) -> tuple[int, ...]:
    """CurlWrapper's connection limits: ints >= 0 (0: no limit), in the order given."""
    for name, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentError(f"{name} must be an int")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    return tuple(limits.values())


def _check_cert(cert: Any) -> tuple[str, str]:
    """acurl's `cert=(key_path, cert_path)`, paths as str."""
    if not (
        isinstance(cert, tuple)
        and len(cert) == 2
        and all(isinstance(c, (str, os.PathLike)) for c in cert)
    ):
        raise ArgumentError(f"cert must be a (key_path, cert_path) tuple but it was: {cert!r}")
    return (os.fspath(cert[0]), os.fspath(cert[1]))


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
