"""Cookies as libcurl's jar sees them: Netscape cookie-file lines.

libcurl takes cookies (CURLOPT_COOKIELIST) and reports them (CURLINFO_COOKIELIST) as
tab-separated lines, so this module converts between those lines and objects. The names and
signatures are acurl's, so mite code building ``Cookie``/``_Cookie`` keeps working.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["Cookie", "_Cookie", "parse_cookie_string", "session_cookie_for_url"]

_HTTP_ONLY_PREFIX = "#HttpOnly_"
# A tab or line break would split or end the jar line; a NUL would truncate it in C.
_FORBIDDEN = ("\t", "\r", "\n", "\x00")


class Cookie(NamedTuple):
    """A cookie for a given domain, passed as a value in ``cookies=`` (acurl's holder)."""

    domain: str
    name: str
    value: str


def _check_field(field: str, text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"cookie {field} must be str, not {type(text).__name__}")
    for char in _FORBIDDEN:
        if char in text:
            raise ValueError(f"cookie {field} may not contain {char!r}: {text!r}")
    return text


class _Cookie:
    """One jar entry, field for field a Netscape cookie-file line.

    ``expiration`` is seconds since the epoch; 0 marks a session cookie, which never expires
    by time (it goes when the session's cookies are erased).
    """

    __slots__ = (
        "domain",
        "expiration",
        "http_only",
        "include_subdomains",
        "is_secure",
        "name",
        "path",
        "value",
    )

    def __init__(
        self,
        http_only: bool,
        domain: str,
        include_subdomains: bool,
        path: str,
        is_secure: bool,
        expiration: int | float,
        name: str,
        value: str,
    ) -> None:
        self.http_only = bool(http_only)
        self.domain = _check_field("domain", domain)
        self.include_subdomains = bool(include_subdomains)
        self.path = _check_field("path", path)
        self.is_secure = bool(is_secure)
        # acurl stored a C int: accept time.time() + n and keep whole seconds.
        self.expiration = int(expiration)
        self.name = _check_field("name", name)
        self.value = _check_field("value", value)

    @property
    def has_expired(self) -> bool:
        """True once a persistent cookie's expiry time has passed; never for session cookies."""
        return self.expiration != 0 and time.time() > self.expiration

    def format(self) -> bytes:
        """The Netscape cookie-file line libcurl's CURLOPT_COOKIELIST accepts, as UTF-8 bytes.

        Bytes, as acurl 1.2.1 returned (its own tests pin it); `parse_cookie_string`,
        `Request(...)` and `Session.add_cookie` take the bytes back.
        """
        return self._line().encode("utf-8")

    def _line(self) -> str:
        """`format()` as text: what the native jar command takes."""
        domain = _HTTP_ONLY_PREFIX + self.domain if self.http_only else self.domain
        return "\t".join(
            (
                domain,
                "TRUE" if self.include_subdomains else "FALSE",
                self.path,
                "TRUE" if self.is_secure else "FALSE",
                str(self.expiration),
                self.name,
                self.value,
            )
        )

    def _fields(self) -> tuple[bool, str, bool, str, bool, int, str, str]:
        return (
            self.http_only,
            self.domain,
            self.include_subdomains,
            self.path,
            self.is_secure,
            self.expiration,
            self.name,
            self.value,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Cookie):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # attributes are writable

    def __repr__(self) -> str:
        return "_Cookie({})".format(", ".join(repr(f) for f in self._fields()))


def parse_cookie_string(cookie_string: str | bytes | bytearray) -> _Cookie:
    """Parse one line of libcurl's cookie list (``#HttpOnly_`` prefix included) into a `_Cookie`.

    Bytes are accepted because acurl 1.2.1 passed cookie lines around as bytes.
    """
    if isinstance(cookie_string, (bytes, bytearray)):
        try:
            line = bytes(cookie_string).decode("utf-8")
        except UnicodeDecodeError:
            line = bytes(cookie_string).decode("latin-1")
    else:
        line = cookie_string
    # Only the line ending goes: a value may legitimately end in a space.
    line = line.rstrip("\r\n")
    http_only = line.startswith(_HTTP_ONLY_PREFIX)
    if http_only:
        line = line[len(_HTTP_ONLY_PREFIX) :]
    parts = line.split("\t")
    if len(parts) == 6:  # an empty value's trailing tab is lost if the line was stripped
        parts.append("")
    if len(parts) != 7:
        raise ValueError(f"not a Netscape cookie line (7 tab-separated fields): {cookie_string!r}")
    domain, include_subdomains, path, is_secure, expiration, name, value = parts
    try:
        expires = int(expiration)
    except ValueError:
        raise ValueError(f"cookie expiration is not an integer: {cookie_string!r}") from None
    return _Cookie(
        http_only,
        domain,
        include_subdomains == "TRUE",
        path,
        is_secure == "TRUE",
        expires,
        name,
        value,
    )


def session_cookie_for_url(
    url: str,
    name: str,
    value: str | Cookie,
    http_only: bool = False,
    include_subdomains: bool = True,
    is_secure: bool = False,
    include_url_path: bool = False,
) -> _Cookie:
    """A session cookie (expiration 0) for the URL's host and its subdomains, path "/".

    A `Cookie` value brings its own domain, name and value, as in acurl.
    """
    parts = urlsplit(url)
    path = (parts.path or "/") if include_url_path else "/"
    if isinstance(value, Cookie):
        domain, name, text = value.domain, value.name, value.value
    elif isinstance(value, str):
        # .hostname drops userinfo and port and unbrackets IPv6; acurl's split(":") did not.
        host = parts.hostname
        if not host:
            raise ValueError(f"url has no host: {url!r}")
        domain, text = "." + host, value
    else:
        raise ValueError("cookie value must be string or Cookie class")
    return _Cookie(http_only, domain, include_subdomains, path, is_secure, 0, name, text)


# Which jar cookies libcurl puts in a request (curl 8.22: lib/cookie.c Curl_cookie_getlist and
# lib/http.c http_cookies), so a session's `Request.cookies` can say what was sent.
_MAX_SENT = 150  # MAX_COOKIE_SEND_AMOUNT: cookies per request
_MAX_HEADER = 8190  # MAX_COOKIE_HEADER_LEN: cookies that would make the header longer are left out
# Curl_secure_context: where Secure cookies go besides https.
_SECURE_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _path_matches(cookie_path: str, uri_path: str) -> bool:
    """curl's pathmatch(): the cookie path is the URL path or a "/"-bounded prefix of it."""
    if len(cookie_path) == 1:
        return True
    if not uri_path.startswith("/"):
        uri_path = "/"
    if not uri_path.startswith(cookie_path):
        return False
    return len(uri_path) == len(cookie_path) or uri_path[len(cookie_path)] == "/"


def _domain_matches(cookie: _Cookie, host: str, host_is_ip: bool) -> bool:
    domain = cookie.domain[1:] if cookie.domain.startswith(".") else cookie.domain
    domain = domain.lower()
    if cookie.include_subdomains and not host_is_ip:
        return host == domain or host.endswith("." + domain)
    return host == domain


def _send_order(cookie: _Cookie) -> tuple[int, int, int]:
    domain = cookie.domain.lstrip(".")
    return (-len(cookie.path.encode()), -len(domain.encode()), -len(cookie.name.encode()))


def cookies_sent(lines: Sequence[str], url: str, when: float) -> list[_Cookie]:
    """The cookies among jar lines that libcurl sends with a request to `url` at time `when`
    (seconds since the epoch), in the order it sends them: domain, path, Secure and expiry as
    curl matches them, the longest path first, no more than curl's limits."""
    if not lines:
        return []
    parts = urlsplit(url)
    host = parts.hostname or ""  # lower-cased, an IPv6 address without brackets
    secure = parts.scheme.lower() == "https" or host in _SECURE_HOSTS
    host_is_ip = _is_ip(host)
    path = parts.path or "/"
    matched: list[_Cookie] = []
    for line in lines:
        try:
            cookie = parse_cookie_string(line)
        except ValueError:
            continue
        if cookie.expiration and cookie.expiration < when:
            continue
        if cookie.is_secure and not secure:
            continue
        if _domain_matches(cookie, host, host_is_ip) and _path_matches(cookie.path, path):
            matched.append(cookie)
            if len(matched) >= _MAX_SENT:
                break
    # curl's cookie_sort: longer path, then longer domain, then longer name, then newest
    # (the jar lists a host's cookies oldest first, and the sort keeps that order reversed).
    matched.reverse()
    matched.sort(key=_send_order)
    sent: list[_Cookie] = []
    length = len("Cookie: ")
    for cookie in matched:
        add = len(cookie.name.encode()) + len(cookie.value.encode()) + 1
        if length + add >= _MAX_HEADER:
            break
        length += add + (2 if sent else 0)
        sent.append(cookie)
    return sent


class _SentCookies:
    """`cookies_sent` of a jar snapshot, worked out only when iterated: a session hands one to
    each hop's `Request` as its ``cookie_tuple``, and most requests' cookies are never read."""

    __slots__ = ("_lines", "_url", "_when")

    def __init__(self, lines: Sequence[str], url: str, when: float) -> None:
        self._lines = lines
        self._url = url
        self._when = when

    def __iter__(self) -> Iterator[_Cookie]:
        return iter(cookies_sent(self._lines, self._url, self._when))
