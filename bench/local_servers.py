"""The benchmark's servers, on loopback only, started and stopped by the harness.

`BenchNginx`: Debian's nginx, one worker pinned to the server CPU, a private prefix with its own
config, pid file, logs and a certificate made at start (trustme). Listeners:

- TLS (ALPN h2 and http/1.1) on 127.0.0.1:`https_port`;
- plain HTTP/1.1 on 127.0.0.1:`http_port`, which also serves `/nginx_status` (stub_status).

Paths: `/small` (and anything unlisted) -> 200 with a 100-byte body; `/big` -> a 64 KiB file.
Requests whose query has `p=...` are written to `tls.log` with `$connection` and
`$ssl_session_reused`, so a run can count its new connections and TLS resumptions; nothing else
is logged. It is tests/servers/nginx.py (the tests' server) with the benchmark's limits (many
connections, endless keep-alive) and locations.

`SlowServer`: a small asyncio HTTP/1.1 server in its own process (pinned to the server CPU)
that answers every request after a delay, with `Connection: close`.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from pathlib import Path

SMALL_BODY = b"ok " + b"a" * 96 + b"\n"  # 100 bytes
BIG_SIZE = 64 * 1024
NGINX = "/usr/sbin/nginx"


def pinned(cpu: int | None):
    """A preexec_fn that pins the child (and what it forks) to one CPU."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _configure_args(binary: str) -> str:
    out = subprocess.run([binary, "-V"], capture_output=True, text=True, check=True)
    return out.stderr + out.stdout


def nginx_version(binary: str = NGINX) -> str:
    return _configure_args(binary).splitlines()[0].split("/", 1)[-1].strip()


# The tests' nginx harness (tests/servers/nginx.py) is the one nginx harness: the benchmark's
# server is a configuration of it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers.nginx import NginxServer  # noqa: E402

_SMALL_BODY_NGINX = SMALL_BODY.decode().replace("\n", "\\n")  # nginx's own escape
_BENCH_LOCATIONS = (
    "        location / {\n"
    f'            return 200 "{_SMALL_BODY_NGINX}";\n'
    "        }\n"
    "        location = /big {\n            default_type application/octet-stream;\n        }\n"
)
_BENCH_HTTP = (
    "    keepalive_requests 100000000;\n    keepalive_timeout 300s;\n"
    "    http2_max_concurrent_streams 512;\n"
    "    log_format bench '$connection $ssl_session_reused $server_protocol $arg_p';\n"
    '    map $arg_p $bench_log {\n        "" 0;\n        default 1;\n    }\n'
)


class BenchNginx(NginxServer):
    """The tests' nginx with the benchmark's limits: one worker pinned to `cpu`, many
    connections, endless keep-alive, a 100-byte `/` and only `?p=` requests logged."""

    def __init__(self, prefix: Path, cpu: int | None, binary: str = NGINX) -> None:
        self.tls_log = Path(prefix).resolve() / "tls.log"
        super().__init__(
            prefix,
            extra_http=_BENCH_HTTP,
            extra_server=f"        access_log {self.tls_log} bench if=$bench_log;",
            ipv6=False,
            binary=binary,
            locations=_BENCH_LOCATIONS,
            cpu=cpu,
            worker_connections=8192,
            error_log_level="warn",
        )

    @property
    def status_url(self) -> str:
        return f"{self.http_url}/nginx_status"

    def log_offset(self) -> int:
        return self.tls_log.stat().st_size if self.tls_log.exists() else 0

    def log_since(self, offset: int) -> list[list[str]]:
        if not self.tls_log.exists():
            return []
        with open(self.tls_log, "rb") as fh:
            fh.seek(offset)
            return [line.split() for line in fh.read().decode().splitlines()]


SLOW_SERVER = r"""
import asyncio, sys

DELAY = float(sys.argv[1])
BODY = b"slow\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


async def handle(reader, writer):
    try:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(DELAY)
        writer.write(RESPONSE)
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
"""


class SlowServer:
    """Answers every request after `delay` seconds (the "waiting" workload)."""

    body_size = 5

    def __init__(self, delay: float, cpu: int | None) -> None:
        self.delay = delay
        self.cpu = cpu
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slow"

    def start(self) -> SlowServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SLOW_SERVER, str(self.delay)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=pinned(self.cpu),
        )
        atexit.register(self.stop)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            atexit.unregister(self.stop)
            proc.terminate()
            proc.wait(10)
