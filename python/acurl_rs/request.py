"""What was sent: the `Request` attached to every response (``response.request``).

mite reads ``request.method`` in its metrics callback and people paste ``to_curl()`` into a
shell to reproduce a failure, so both must be faithful. Built once per transfer (every redirect
hop), so the constructor only stores its arguments; headers and cookies are parsed on first use.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from .cookies import Cookie, _Cookie, parse_cookie_string

__all__ = ["Request"]

HeaderItem: TypeAlias = "tuple[str, str] | str | bytes"
CookieItem: TypeAlias = "tuple[str, str | Cookie | _Cookie] | Cookie | _Cookie | str | bytes"


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _header_pair(item: Any) -> tuple[str, str]:
    if isinstance(item, (bytes, bytearray)):
        item = _text(bytes(item))
    if isinstance(item, str):  # acurl's "Name: value" lines
        name, sep, value = item.partition(":")
        if not sep:
            raise ValueError(f"header line has no ':': {item!r}")
        return name.strip(), value.strip()
    name, value = item
    return str(name), str(value)


def _cookie_pair(item: Any) -> tuple[str, str]:
    if isinstance(item, (Cookie, _Cookie)):
        return item.name, item.value
    if isinstance(item, (str, bytes, bytearray)):  # acurl 1.2.1 passed jar lines
        cookie = parse_cookie_string(item)
        return cookie.name, cookie.value
    name, value = item
    if isinstance(value, (Cookie, _Cookie)):
        return value.name, value.value
    return str(name), str(value)


def _items(source: Iterable[Any] | Mapping[Any, Any] | None) -> Iterable[Any]:
    if source is None:
        return ()
    if isinstance(source, Mapping):
        return source.items()
    return source


class Request:
    """One transfer's request, built positionally as in acurl:
    ``Request(method, url, header_tuple, cookie_tuple, auth, data, cert)``.

    ``header_tuple`` holds (name, value) pairs or "Name: value" lines;
    ``cookie_tuple`` holds (name, value) pairs, `Cookie`/`_Cookie` objects or jar lines
    (str or the bytes `_Cookie.format()` returns).
    """

    __slots__ = (
        "_cookies",
        "_headers",
        "auth",
        "cert",
        "cookie_tuple",
        "data",
        "header_tuple",
        "method",
        "url",
    )

    method: bytes
    url: str
    header_tuple: tuple[HeaderItem, ...]
    cookie_tuple: tuple[CookieItem, ...]
    auth: tuple[str, str] | None
    data: bytes | None
    cert: tuple[str, str] | None

    def __init__(
        self,
        method: bytes | str,
        url: str,
        header_tuple: Iterable[HeaderItem] | Mapping[str, str] | None = (),
        cookie_tuple: Iterable[CookieItem] | Mapping[str, Any] | None = (),
        auth: tuple[str, str] | None = None,
        data: bytes | str | None = None,
        cert: tuple[str, str] | None = None,
    ) -> None:
        if isinstance(method, str):
            try:
                method = method.encode("ascii")
            except UnicodeEncodeError:
                raise ValueError(f"method must be ASCII: {method!r}") from None
        elif isinstance(method, (bytearray, memoryview)):
            method = bytes(method)
        elif not isinstance(method, bytes):
            raise TypeError(f"method must be bytes or str, not {type(method).__name__}")
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        elif data is not None and not isinstance(data, bytes):
            raise ValueError("data must be str or bytes")
        self.method = method  # bytes, as acurl: mite compares it with b"GET"
        self.url = url
        self.header_tuple = tuple(_items(header_tuple))
        self.cookie_tuple = tuple(_items(cookie_tuple))
        self.auth = auth
        self.data = data
        self.cert = cert
        self._headers: dict[str, str] | None = None
        self._cookies: dict[str, str] | None = None

    @property
    def method_str(self) -> str:
        """The method as text ("GET"), for logs and for code that never wanted bytes."""
        return self.method.decode("ascii")

    @property
    def headers(self) -> dict[str, str]:
        """Request headers, name -> value in the case given (a later duplicate wins)."""
        if self._headers is None:
            self._headers = dict(map(_header_pair, self.header_tuple))
        return self._headers

    @property
    def cookies(self) -> dict[str, str]:
        """This request's cookies, name -> value (a later duplicate wins, as in acurl).

        For a request a session made, these are the jar's cookies libcurl sent with it, the
        ones given in ``cookies=`` included, as the jar was when the transfer started.
        """
        if self._cookies is None:
            self._cookies = dict(map(_cookie_pair, self.cookie_tuple))
        return self._cookies

    def to_curl(self) -> str:
        """A shell command that makes the same request with the curl tool.

        HEAD becomes ``--head``: ``-X HEAD`` makes curl wait for a body that never comes.
        Every header is repeated as given; an empty value is written ``Name;`` because
        curl reads ``Name:`` as "remove this header".
        """
        quote = shlex.quote
        args = ["curl"]
        args += ["--head"] if self.method == b"HEAD" else ["-X", quote(self.method_str)]
        for name, value in map(_header_pair, self.header_tuple):
            args += ["-H", quote(f"{name}: {value}" if value else f"{name};")]
        cookies = [f"{k}={v}" for k, v in map(_cookie_pair, self.cookie_tuple)]
        if cookies:
            # Joined by ";" as acurl wrote it; every cookie sent, a repeated name included.
            args += ["--cookie", quote(";".join(cookies))]
        if self.auth is not None:
            args += ["--user", quote(f"{self.auth[0]}:{self.auth[1]}")]
        prefix = ""
        if self.data is not None:
            text = _utf8_or_none(self.data)
            if text is None:
                # Not representable as shell text: feed the exact bytes through stdin.
                # printf's \\ooo octal escapes are POSIX, so this works in any sh.
                octal = "".join(f"\\{byte:03o}" for byte in self.data)
                prefix = f"printf '{octal}' | "
                args += ["--data-binary", "@-"]
            elif text.startswith("@"):
                args += ["--data-raw", quote(text)]  # --data-binary @x would read file x
            else:
                args += ["--data-binary", quote(text)]
        if self.cert is not None:
            key_path, cert_path = self.cert
            args += ["--key", quote(key_path), "--cert", quote(cert_path)]
        if any(c in self.url for c in "[]{}"):
            args.append("--globoff")  # curl would expand [] and {} as URL patterns
        args.append(quote(self.url))
        return prefix + " ".join(args)

    def __repr__(self) -> str:
        return f"<Request [{self.method_str}] {self.url}>"


def _utf8_or_none(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text
