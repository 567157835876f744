"""Type stubs for the native module (checked by `python -m mypy.stubtest acurl_rs._acurl_rs`)."""

import asyncio
from typing import Any, final

__all__ = [
    "CURLE_OPERATION_TIMEDOUT",
    "CURLE_TOO_MANY_REDIRECTS",
    "CURLE_UNSUPPORTED_PROTOCOL",
    "RETRYABLE_CODES",
    "Driver",
    "NativeSession",
    "NativeWrapper",
    "RawResponse",
    "TransferOptions",
    "__version__",
    "build_info",
    "curl_version",
]

__version__: str

# curl codes the Python layer names; their one definition is src/error.rs.
CURLE_OPERATION_TIMEDOUT: int
CURLE_TOO_MANY_REDIRECTS: int
CURLE_UNSUPPORTED_PROTOCOL: int
#: The connection died before a response: safe to send again if idempotent (AcurlError.retryable).
RETRYABLE_CODES: frozenset[int]

def curl_version() -> str: ...
def build_info() -> dict[str, Any]: ...

@final
class Driver:
    def on_readable(self, fd: int) -> None: ...
    def on_writable(self, fd: int) -> None: ...
    def on_timer(self) -> None: ...

@final
class NativeWrapper:
    def __new__(
        cls,
        event_loop: asyncio.AbstractEventLoop,
        max_connects: int = 100,
        max_host_connections: int = 0,
        max_total_connections: int = 0,
    ) -> NativeWrapper: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def event_loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def in_flight(self) -> int: ...
    def registrations(self) -> tuple[list[int], bool]: ...
    def parked(self) -> list[int]: ...

@final
class NativeSession:
    def __new__(
        cls,
        wrapper: NativeWrapper,
        connection_scope: str = "wrapper",
        share_lock_callbacks: bool = True,
        tls_sessions: str = "wrapper",
    ) -> NativeSession: ...
    def start(
        self,
        method: str,
        url: str,
        headers: list[str],
        body: bytes | None,
        cookie: str | None,
        options: TransferOptions,
    ) -> tuple[asyncio.Future[RawResponse], int]: ...
    def cancel(self, token: int) -> None: ...
    def recycle_connections(self) -> None: ...
    def cookie_lines(self) -> list[str]: ...
    def cookie_command(self, command: str) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...

@final
class TransferOptions:
    def __new__(
        cls,
        timeout: float | None,
        connect_timeout: float | None,
        verify: bool,
        ca_file: str | None,
        ca_path: str | None,
        http_version: str,
        max_body_size: int | None,
        user_agent: str,
        cert: tuple[str, str] | None,
        no_proxy: bool = False,
    ) -> TransferOptions: ...

@final
class RawResponse:
    @property
    def status_code(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def redirect_url(self) -> str | None: ...
    @property
    def primary_ip(self) -> str: ...
    @property
    def primary_port(self) -> int: ...
    @property
    def local_ip(self) -> str: ...
    @property
    def local_port(self) -> int: ...
    @property
    def http_version(self) -> str: ...
    @property
    def num_connects(self) -> int: ...
    @property
    def conn_id(self) -> int: ...
    @property
    def xfer_id(self) -> int: ...
    @property
    def upload_size(self) -> float: ...
    @property
    def download_size(self) -> float: ...
    @property
    def namelookup_time(self) -> float: ...
    @property
    def connect_time(self) -> float: ...
    @property
    def appconnect_time(self) -> float: ...
    @property
    def pretransfer_time(self) -> float: ...
    @property
    def starttransfer_time(self) -> float: ...
    @property
    def total_time(self) -> float: ...
    @property
    def queue_time(self) -> float: ...
    @property
    def tls_resumed(self) -> bool | None: ...
    @property
    def body(self) -> bytes: ...
    @property
    def header(self) -> bytes: ...
