"""acurl_rs: an asyncio HTTP client over a bundled libcurl 8 with HTTP/2, for load-test runners.

A drop-in for acurl 1.2.1 (`import acurl_rs as acurl`): `CurlWrapper(loop).session()` and
the same request coroutines, responses, cookies and errors, without acurl's defects.
"""

from ._acurl_rs import __version__, build_info, curl_version
from ._arguments import ArgumentError
from .cookies import Cookie, _Cookie, parse_cookie_string, session_cookie_for_url
from .errors import (
    AcurlError,
    AcurlTimeoutError,
    BodyTooLargeError,
    ConnectError,
    HTTP2Error,
    HTTPStatusError,
    InvalidURLError,
    ProtocolError,
    RequestError,
    RequestPanicError,
    ResolveError,
    SessionClosedError,
    TLSError,
    UnsupportedProtocolError,
)
from .request import Request
from .response import Response, _Response
from .session import CurlWrapper, Session
from .structures import CaseInsensitiveDict

__all__ = [
    "AcurlError",
    "AcurlTimeoutError",
    "ArgumentError",
    "BodyTooLargeError",
    "CaseInsensitiveDict",
    "ConnectError",
    "Cookie",
    "CurlWrapper",
    "HTTP2Error",
    "HTTPStatusError",
    "InvalidURLError",
    "ProtocolError",
    "Request",
    "RequestError",
    "RequestPanicError",
    "ResolveError",
    "Response",
    "Session",
    "SessionClosedError",
    "TLSError",
    "UnsupportedProtocolError",
    "_Cookie",
    "_Response",
    "__version__",
    "build_info",
    "curl_version",
    "parse_cookie_string",
    "session_cookie_for_url",
]
