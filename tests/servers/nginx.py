"""Debian's nginx as a loopback HTTPS (h2 + http/1.1) and plain HTTP/1.1 server.

``NginxServer(base_dir).start()`` writes a private prefix under ``base_dir``
(config, pid file, logs, temp dirs, a 64 KiB static file and trustme
certificates) and runs ``nginx`` in the foreground (``daemon off``, master
process on) as a child in its own process group; ``stop()`` sends SIGTERM,
waits, and SIGKILLs the group if needed. Nothing listens beyond loopback.

Listeners (all ``worker_processes 1``, ``keepalive_requests 100000`` unless
overridden through ``extra_http``):

- ``https_url``: TLS with ALPN h2 and http/1.1 (also on [::1] when available,
  ``https_url_v6``).
- ``http_url``: plain HTTP/1.1, the only one with ``/nginx_status``.
- ``h2c_url``: plain-text HTTP/2 with prior knowledge only.
- ``mtls_url`` (``mtls=True``): TLS that requires a client certificate signed by
  the test CA (``client_cert_path``/``client_key_path``).

Locations on every listener: ``/`` (and any unlisted path) -> 200 "hello\\n";
``/big`` -> 64 KiB static file (``big_body``); ``/echo-headers`` -> "cookie=...",
"user-agent=...", "host=...", "protocol=..." lines; ``/cookie`` -> the Cookie
header value; ``/conn`` -> "$connection $connection_requests $server_protocol\\n"
(connection reuse checks).
"""

from __future__ import annotations

import atexit
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import trustme

BIG_SIZE = 64 * 1024
DEFAULT_NGINX = "/usr/sbin/nginx"
# http{} defaults; a directive of the same name in ``extra_http`` replaces one.
DEFAULT_HTTP_DIRECTIVES = {
    "keepalive_requests": "100000",
    "default_type": "text/plain",
    "server_tokens": "off",
}


def find_nginx() -> str:
    """The nginx binary: $NGINX_BIN, /usr/sbin/nginx, or nginx on PATH."""
    candidates = [os.environ.get("NGINX_BIN"), DEFAULT_NGINX, shutil.which("nginx")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("nginx not found (install Debian's nginx or nginx-light, or set NGINX_BIN)")


def nginx_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=True, timeout=10)
    match = re.search(r"nginx/(\d+(?:\.\d+)+)", out.stderr + out.stdout)
    if not match:
        raise RuntimeError(f"cannot parse nginx -v output: {out.stderr!r}")
    return tuple(int(p) for p in match.group(1).split("."))


def nginx_configure_args(binary: str) -> str:
    out = subprocess.run([binary, "-V"], capture_output=True, text=True, check=True, timeout=10)
    return out.stderr + out.stdout


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port(ipv6: bool) -> int:
    """A port free on 127.0.0.1 (and on ::1 when ``ipv6``); nginx binds it next."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if not ipv6:
            return port
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock6:
                sock6.bind(("::1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free loopback port")


def parse_stub_status(text: str) -> dict[str, int]:
    """Parse ngx_http_stub_status output into a dict of ints."""
    active = re.search(r"Active connections:\s*(\d+)", text)
    counts = re.search(r"server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)", text)
    states = re.search(r"Reading:\s*(\d+)\s+Writing:\s*(\d+)\s+Waiting:\s*(\d+)", text)
    if not (active and counts and states):
        raise ValueError(f"not stub_status output: {text!r}")
    return {
        "active": int(active.group(1)),
        "accepts": int(counts.group(1)),
        "handled": int(counts.group(2)),
        "requests": int(counts.group(3)),
        "reading": int(states.group(1)),
        "writing": int(states.group(2)),
        "waiting": int(states.group(3)),
    }


_ECHO_HEADERS = (
    r"cookie=$http_cookie\nuser-agent=$http_user_agent\n"
    r"host=$host\nprotocol=$server_protocol\naccept-encoding=$http_accept_encoding\n"
)
LOCATIONS = r"""
        location / {
            return 200 "hello\n";
        }
        location = /big {
            default_type application/octet-stream;
        }
        location = /echo-headers {
            return 200 "@ECHO_HEADERS@";
        }
        location = /cookie {
            return 200 "$http_cookie";
        }
        location = /conn {
            return 200 "$connection $connection_requests $server_protocol\n";
        }
""".replace("@ECHO_HEADERS@", _ECHO_HEADERS)


class NginxServer:
    """A private nginx instance on free loopback ports (see module docstring)."""

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        *,
        extra_http: str = "",
        extra_server: str = "",
        mtls: bool = False,
        ipv6: bool | None = None,
        ca: trustme.CA | None = None,
        binary: str | None = None,
        startup_timeout: float = 15.0,
        locations: str | None = None,
        cpu: int | None = None,
        worker_connections: int = 1024,
        error_log_level: str = "info",
    ) -> None:
        """``locations``, ``cpu`` (pin the master and its worker to one CPU),
        ``worker_connections`` and ``error_log_level`` let the benchmark's server
        (bench/local_servers.py) be this one with other limits."""
        self.prefix = Path(base_dir).resolve()
        self.locations = LOCATIONS if locations is None else locations
        self.cpu = cpu
        self.worker_connections = worker_connections
        self.error_log_level = error_log_level
        self.extra_http = extra_http
        self.extra_server = extra_server
        self.mtls = mtls
        self.ipv6 = ipv6_loopback_available() if ipv6 is None else ipv6
        self.ca = ca or trustme.CA()
        self.binary = binary or find_nginx()
        self.version = nginx_version(self.binary)
        self.startup_timeout = startup_timeout

        self.conf_path = self.prefix / "nginx.conf"
        self.pid_path = self.prefix / "nginx.pid"
        self.error_log_path = self.prefix / "error.log"
        self.access_log_path = self.prefix / "access.log"
        self.ca_path = str(self.prefix / "ca.pem")
        self.cert_path = str(self.prefix / "server.pem")
        self.key_path = str(self.prefix / "server.key")
        self.client_cert_path = str(self.prefix / "client.pem")
        self.client_key_path = str(self.prefix / "client.key")
        self.big_path = self.prefix / "html" / "big"
        self.big_body = random.Random(64).randbytes(BIG_SIZE)

        self.https_port = self.http_port = self.h2c_port = 0
        self.mtls_port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    # -- URLs ------------------------------------------------------------------

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def https_url_v6(self) -> str:
        if not self.ipv6:
            raise RuntimeError("IPv6 loopback not available")
        return f"https://[::1]:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def h2c_url(self) -> str:
        return f"http://127.0.0.1:{self.h2c_port}"

    @property
    def mtls_url(self) -> str:
        if self.mtls_port is None:
            raise RuntimeError("NginxServer started without mtls=True")
        return f"https://127.0.0.1:{self.mtls_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # -- files -------------------------------------------------------------------

    def _write_files(self) -> None:
        for sub in ("html", "tmp", "logs"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        self.ca.cert_pem.write_to_path(self.ca_path)
        server = self.ca.issue_cert("localhost", "127.0.0.1", "::1")
        server.private_key_pem.write_to_path(self.key_path)
        with open(self.cert_path, "wb") as fh:
            for blob in server.cert_chain_pems:
                fh.write(blob.bytes())
        client = self.ca.issue_cert("client@example.test")
        client.private_key_pem.write_to_path(self.client_key_path)
        with open(self.client_cert_path, "wb") as fh:
            for blob in client.cert_chain_pems:
                fh.write(blob.bytes())
        self.big_path.write_bytes(self.big_body)

    def _listen(self, port: int, params: str) -> str:
        hosts = ["127.0.0.1"] + (["[::1]"] if self.ipv6 else [])
        return "".join(f"        listen {h}:{port}{params};\n" for h in hosts)

    def _tls_listen(self, port: int) -> str:
        if self.version >= (1, 25, 1):
            return self._listen(port, " ssl") + "        http2 on;\n"
        return self._listen(port, " ssl http2")

    def _h2c_listen(self, port: int) -> str:
        if self.version >= (1, 25, 1):
            return self._listen(port, "") + "        http2 on;\n"
        return self._listen(port, " http2")

    def _temp_paths(self) -> str:
        configure = nginx_configure_args(self.binary)
        lines = [f"    client_body_temp_path {self.prefix}/tmp/client_body;"]
        for module in ("proxy", "fastcgi", "uwsgi", "scgi"):
            if f"--without-http_{module}_module" not in configure:
                lines.append(f"    {module}_temp_path {self.prefix}/tmp/{module};")
        return "\n".join(lines) + "\n"

    def _default_http(self) -> str:
        """Default http{} directives, minus those that ``extra_http`` sets itself."""
        lines = []
        for name, value in DEFAULT_HTTP_DIRECTIVES.items():
            if not re.search(rf"(^|[;{{\s]){name}\s", self.extra_http):
                lines.append(f"    {name} {value};\n")
        return "".join(lines)

    def render_config(self) -> str:
        tls = (
            f"        ssl_certificate {self.cert_path};\n"
            f"        ssl_certificate_key {self.key_path};\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        )
        mtls_server = ""
        if self.mtls_port is not None:
            mtls_server = (
                "    server {\n"
                + self._tls_listen(self.mtls_port)
                + tls
                + f"        ssl_client_certificate {self.ca_path};\n"
                "        ssl_verify_client on;\n"
                f"{self.extra_server}\n{self.locations}    }}\n"
            )
        # As root the worker would switch to "nobody", which cannot read a
        # private pytest tmp dir; keep it as the current user instead.
        user = "user root;\n" if os.geteuid() == 0 else ""
        affinity = "" if self.cpu is None else f"worker_cpu_affinity {1 << self.cpu:b};\n"
        return (
            f"{user}"
            "worker_processes 1;\n"
            f"{affinity}"
            f"worker_rlimit_nofile {max(2 * self.worker_connections, 1024)};\n"
            "daemon off;\n"
            "master_process on;\n"
            f"pid {self.pid_path};\n"
            f"error_log {self.error_log_path} {self.error_log_level};\n"
            f"events {{\n    worker_connections {self.worker_connections};\n}}\n"
            "http {\n"
            "    log_format acurl '$remote_addr:$remote_port conn=$connection "
            "n=$connection_requests $server_protocol $ssl_protocol "
            '"$request" $status $body_bytes_sent resumed=$ssl_session_reused\';\n'
            f"    access_log {self.access_log_path} acurl;\n"
            f"{self._temp_paths()}"
            f"    root {self.prefix}/html;\n"
            f"{self._default_http()}"
            f"{self.extra_http}\n"
            "    server {\n"
            + self._tls_listen(self.https_port)
            + tls
            + f"{self.extra_server}\n{self.locations}    }}\n"
            "    server {\n"
            + self._listen(self.http_port, "")
            + "        location = /nginx_status {\n"
            "            stub_status;\n"
            "        }\n"
            f"{self.extra_server}\n{self.locations}    }}\n"
            "    server {\n"
            + self._h2c_listen(self.h2c_port)
            + f"{self.extra_server}\n{self.locations}    }}\n"
            f"{mtls_server}"
            "}\n"
        )

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> NginxServer:
        if self.proc is not None:
            raise RuntimeError("nginx already started")
        self._write_files()
        last_error = ""
        for _attempt in range(3):
            self.https_port = free_port(self.ipv6)
            self.http_port = free_port(self.ipv6)
            self.h2c_port = free_port(self.ipv6)
            self.mtls_port = free_port(self.ipv6) if self.mtls else None
            self.conf_path.write_text(self.render_config())
            try:
                self._spawn()
                return self
            except RuntimeError as exc:
                last_error = str(exc)
                if "Address already in use" not in last_error:
                    break
        raise RuntimeError(last_error)

    def _spawn(self) -> None:
        cmd = [self.binary, "-p", f"{self.prefix}/", "-c", str(self.conf_path)]
        if self.version >= (1, 19, 5):
            cmd += ["-e", str(self.error_log_path)]
        self.error_log_path.touch()
        log_offset = self.error_log_path.stat().st_size
        stderr_path = self.prefix / "logs" / "stderr.log"
        with open(stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # own process group: killpg on stop
                preexec_fn=None if self.cpu is None else _pin_to(self.cpu),
            )
        atexit.register(self.stop)
        ports = [self.https_port, self.http_port, self.h2c_port]
        if self.mtls_port is not None:
            ports.append(self.mtls_port)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                atexit.unregister(self.stop)
                with open(self.error_log_path, "rb") as fh:
                    fh.seek(log_offset)
                    log = fh.read().decode(errors="replace")
                raise RuntimeError(
                    f"nginx exited at startup: {stderr_path.read_text()}\n{log}\n"
                    f"config: {self.conf_path}"
                )
            if self.pid_path.exists() and all(map(_port_open, ports)):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen within {self.startup_timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate nginx (and its worker) and wait. Idempotent."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # fast shutdown; the master reaps its worker
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            pass
        # Still alive: kill the process group nginx was started in (master + worker).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout)

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- introspection -----------------------------------------------------------

    def stub_status(self) -> dict[str, int]:
        """Counters from /nginx_status on the plain listener (own request included)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            conn.request("GET", "/nginx_status", headers={"Connection": "close"})
            response = conn.getresponse()
            body = response.read().decode()
            if response.status != 200:
                raise RuntimeError(f"stub_status: HTTP {response.status}: {body!r}")
        finally:
            conn.close()
        return parse_stub_status(body)

    def error_log(self) -> str:
        return self.error_log_path.read_text(errors="replace")


def _pin_to(cpu: int):
    return lambda: os.sched_setaffinity(0, {cpu})


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
