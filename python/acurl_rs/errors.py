"""The exceptions acurl_rs raises.

They live in Python, not Rust, so they can have docstrings and stubs, inherit the builtin
they mean (``except TimeoutError`` catches a curl timeout) and pickle across processes (mite
sends failures from runner to controller). The native module raises them as
``Class(curl_code, curl_error_text)``; acurl's ``RequestError("Max Redirects")`` form
(a single message string) still works.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AcurlError",
    "AcurlTimeoutError",
    "BodyTooLargeError",
    "ConnectError",
    "HTTP2Error",
    "HTTPStatusError",
    "InvalidURLError",
    "ProtocolError",
    "RequestError",
    "RequestPanicError",
    "ResolveError",
    "SessionClosedError",
    "TLSError",
    "UnsupportedProtocolError",
]


class AcurlError(Exception):
    """A request failed. Base of every acurl_rs error, with acurl's name so old handlers match.

    ``code`` is the CURLcode (or the class default), ``curl_message`` curl's error-buffer
    text, ``category`` a stable label for metrics that does not depend on message wording.
    """

    category: ClassVar[str] = "other"
    #: How often acurl_rs sent the request again before giving up (see `retries=`).
    retries: int = 0
    #: Whether any response byte arrived before the failure (set for transport failures).
    response_started: bool = True
    default_code: ClassVar[int | None] = None

    code: int | None
    curl_message: str

    def __init__(self, code: int | str | None = None, curl_message: str | None = None) -> None:
        if isinstance(code, int):
            text = (curl_message or "").strip()
            message = f"curl failed with code {code}"
            if text:
                # The trailing text after the code is what mite's tests match on.
                message = f"{message} {text}"
            self.code = code
        elif isinstance(code, str) or code is None:
            message = code if code is not None else (curl_message or "")
            self.code = self.default_code
        else:
            raise TypeError(f"code must be an int or a message str, not {type(code).__name__}")
        super().__init__(message)
        self.curl_message = curl_message or ""
        self._init_args = (code, curl_message)

    @property
    def retryable(self) -> bool:
        """Whether the failure leaves the request safe to send again: the connection died
        before any response byte arrived (curl's empty reply, a send or receive failure, an
        HTTP/2 GOAWAY or REFUSED_STREAM: the codes in ``_acurl_rs.RETRYABLE_CODES``, defined
        once in the native module). acurl_rs itself does so for idempotent methods (``retries=``).
        """
        from ._acurl_rs import RETRYABLE_CODES  # here: the pure-Python tests load this file alone

        return self.code in RETRYABLE_CODES and not self.response_started

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the constructor arguments: the default Exception/OSError reduction
        # would call cls(message) and lose the int code (and OSError would misparse it).
        init_args = getattr(self, "_init_args", tuple(self.args[:1]))
        return (type(self), init_args, dict(self.__dict__))


class RequestError(AcurlError):
    """Too many redirects; acurl raised ``RequestError("Max Redirects")``."""

    category = "redirect"
    default_code = 47  # _acurl_rs.CURLE_TOO_MANY_REDIRECTS (tests/test_error_codes.py)


class ConnectError(AcurlError, ConnectionError):
    """The connection could not be made (refused, unreachable, reset while connecting)."""

    category = "connect"


class ResolveError(ConnectError):
    """The host name (or proxy name) did not resolve."""

    category = "dns"


class AcurlTimeoutError(AcurlError, TimeoutError):
    """A connect or total timeout expired; also caught by ``except TimeoutError``."""

    category = "timeout"


class TLSError(AcurlError):
    """The TLS handshake or certificate verification failed."""

    category = "tls"


class HTTP2Error(AcurlError):
    """An HTTP/2 stream or framing error (curl code 92 and friends)."""

    category = "http2"


class ProtocolError(AcurlError):
    """The server's reply was not valid HTTP, or the transfer broke off mid-response."""

    category = "protocol"


class BodyTooLargeError(AcurlError):
    """The response body exceeded the ``max_body_size`` the caller set."""

    category = "body_too_large"


class UnsupportedProtocolError(AcurlError):
    """The URL's scheme is not one this build of libcurl speaks."""

    category = "unsupported_protocol"


class InvalidURLError(AcurlError):
    """The URL could not be parsed."""

    category = "invalid_url"


class RequestPanicError(AcurlError):
    """A bug in acurl_rs: its Rust code panicked inside a libcurl callback of this request.

    The transfer was stopped there (libcurl never sees the panic) and the panic's message is
    this error's text; ``code`` is None. Please report it.
    """

    category = "internal"


class SessionClosedError(AcurlError, RuntimeError):
    """The session or wrapper was closed before or while the request ran."""

    category = "closed"


class HTTPStatusError(AcurlError):
    """Raised by `response.raise_for_status()` for a 4xx or 5xx response; `.response` is it."""

    category = "http_status"
    #: The 4xx/5xx response that `raise_for_status()` refused.
    response: Any = None
