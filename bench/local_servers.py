"""The benchmark's servers, on loopback only, started and stopped by the harness.

`BenchNginx`: Debian's nginx, one worker pinned to the server CPU, a private prefix with its own
config, pid file, logs and a certificate made at start (trustme). Listeners:

- TLS (ALPN h2 and http/1.1) on 127.0.0.1:`https_port`;
- plain HTTP/1.1 on 127.0.0.1:`http_port`, which also serves `/nginx_status` (stub_status).

Paths: `/small` (and anything unlisted) -> 200 with a 100-byte body; `/big` -> a 64 KiB file.
Requests whose query has `p=...` are written to `tls.log` with `$connection` and
`$ssl_session_reused`, so a run can count its new connections and TLS resumptions; nothing else
is logged. Adapted from tests/servers/nginx.py (the tests' server), trimmed to what the
benchmark needs and given its own limits (many connections, endless keep-alive).

`SlowServer`: a small asyncio HTTP/1.1 server in its own process (pinned to the server CPU)
that answers every request after a delay, with `Connection: close`.
"""

from __future__ import annotations

import atexit
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SMALL_BODY = b"ok " + b"a" * 96 + b"\n"  # 100 bytes
BIG_SIZE = 64 * 1024
NGINX = "/usr/sbin/nginx"


def pinned(cpu: int | None):
    """A preexec_fn that pins the child (and what it forks) to one CPU."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _configure_args(binary: str) -> str:
    out = subprocess.run([binary, "-V"], capture_output=True, text=True, check=True)
    return out.stderr + out.stdout


def nginx_version(binary: str = NGINX) -> str:
    return _configure_args(binary).splitlines()[0].split("/", 1)[-1].strip()


class BenchNginx:
    def __init__(self, prefix: Path, cpu: int | None, binary: str = NGINX) -> None:
        self.prefix = prefix.resolve()
        self.cpu = cpu
        self.binary = binary
        self.version = tuple(int(p) for p in nginx_version(binary).split(".")[:3])
        self.pid_path = self.prefix / "nginx.pid"
        self.tls_log = self.prefix / "tls.log"
        self.ca_path = self.prefix / "ca.pem"
        self.https_port = self.http_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def status_url(self) -> str:
        return f"{self.http_url}/nginx_status"

    def _write_files(self) -> None:
        import trustme

        for sub in ("html", "tmp", "logs"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_path))
        cert = ca.issue_cert("localhost", "127.0.0.1")
        cert.private_key_pem.write_to_path(str(self.prefix / "server.key"))
        with open(self.prefix / "server.pem", "wb") as fh:
            for blob in cert.cert_chain_pems:
                fh.write(blob.bytes())
        (self.prefix / "html" / "big").write_bytes(random.Random(64).randbytes(BIG_SIZE))

    def render_config(self) -> str:
        p = self.prefix
        configure = _configure_args(self.binary)
        temp = [f"    client_body_temp_path {p}/tmp/client_body;"]
        for module in ("proxy", "fastcgi", "uwsgi", "scgi"):
            if f"--without-http_{module}_module" not in configure:
                temp.append(f"    {module}_temp_path {p}/tmp/{module};")
        if self.version >= (1, 25, 1):
            tls_listen = f"listen 127.0.0.1:{self.https_port} ssl;\n        http2 on;"
        else:
            tls_listen = f"listen 127.0.0.1:{self.https_port} ssl http2;"
        body = SMALL_BODY.decode().replace("\n", "\\n")
        locations = (
            f'        location / {{\n            return 200 "{body}";\n        }}\n'
            "        location = /big {\n            default_type application/octet-stream;\n"
            "        }\n"
        )
        affinity = "" if self.cpu is None else f"worker_cpu_affinity {1 << self.cpu:b};\n"
        user = "user root;\n" if os.geteuid() == 0 else ""
        return (
            f"{user}worker_processes 1;\n{affinity}worker_rlimit_nofile 16384;\n"
            f"daemon off;\nmaster_process on;\npid {self.pid_path};\n"
            f"error_log {p}/error.log warn;\n"
            "events {\n    worker_connections 8192;\n}\n"
            "http {\n"
            "    default_type text/plain;\n    server_tokens off;\n"
            "    keepalive_requests 100000000;\n    keepalive_timeout 300s;\n"
            "    http2_max_concurrent_streams 512;\n"
            f"    root {p}/html;\n" + "\n".join(temp) + "\n"
            "    access_log off;\n"
            "    log_format bench '$connection $ssl_session_reused $server_protocol $arg_p';\n"
            '    map $arg_p $bench_log {\n        "" 0;\n        default 1;\n    }\n'
            "    server {\n"
            f"        {tls_listen}\n"
            f"        ssl_certificate {p}/server.pem;\n"
            f"        ssl_certificate_key {p}/server.key;\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n"
            f"        access_log {self.tls_log} bench if=$bench_log;\n"
            f"{locations}    }}\n"
            "    server {\n"
            f"        listen 127.0.0.1:{self.http_port};\n"
            "        location = /nginx_status {\n            stub_status;\n        }\n"
            f"{locations}    }}\n"
            "}\n"
        )

    def start(self) -> BenchNginx:
        self._write_files()
        for _attempt in range(3):
            self.https_port, self.http_port = free_port(), free_port()
            conf = self.prefix / "nginx.conf"
            conf.write_text(self.render_config())
            cmd = [self.binary, "-p", f"{self.prefix}/", "-c", str(conf)]
            cmd += ["-e", str(self.prefix / "error.log")]
            stderr = open(self.prefix / "logs" / "stderr.log", "ab")
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=pinned(self.cpu),
            )
            stderr.close()
            atexit.register(self.stop)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.pid_path.exists() and port_open(self.https_port):
                    if port_open(self.http_port):
                        return self
                time.sleep(0.05)
            self.stop()
        log = (self.prefix / "error.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"nginx did not start: {log}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

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
