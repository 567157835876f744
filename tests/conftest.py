"""Shared fixtures: loopback test servers. Does not import acurl_rs (may be unbuilt)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# tests/ holds the `servers` package; make it importable under any import mode.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from servers.app import TestServer
from servers.faults import FaultServer
from servers.nginx import NginxServer
from servers.recorder import RecordingServer

# The shared checks of the mite tests assert too: rewrite them before any test imports them.
pytest.register_assert_rewrite("mite_scenarios.results")

# Variables that would send libcurl through a proxy or change its CA store.
SCRUBBED_ENV = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


@pytest.fixture(autouse=True)
def _scrub_network_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove proxy/CA variables before each test; a test may set them again
    (monkeypatch.setenv in the test or a later fixture) and that value wins."""
    for name in SCRUBBED_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def test_server() -> Iterator[TestServer]:
    """The asyncio HTTP/1.1 server (servers/app.py): .base_url, .url(path),
    .connections_accepted, .requests_served, .reset_counters()."""
    server = TestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fault_server() -> Iterator[FaultServer]:
    """Misbehaving listeners (servers/faults.py): .url(mode), .ports, .connections."""
    server = FaultServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    """Default nginx (servers/nginx.py): .https_url, .http_url, .h2c_url, .ca_path,
    .stub_status(). Fails (does not skip) when nginx is not installed."""
    server = NginxServer(tmp_path_factory.mktemp("nginx")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nginx_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., NginxServer]]:
    """Start extra nginx instances with custom config, e.g.
    ``nginx_factory(extra_http="keepalive_requests 100;")``; all are stopped
    when the test ends, pass or fail."""
    started: list[NginxServer] = []

    def make(**kwargs: object) -> NginxServer:
        server = NginxServer(tmp_path_factory.mktemp("nginx-custom"), **kwargs)
        started.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="module")
def recorder() -> Iterator[RecordingServer]:
    """A raw listener recording each request's exact bytes (servers/recorder.py)."""
    server = RecordingServer().start()
    try:
        yield server
    finally:
        server.stop()
