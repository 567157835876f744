"""What the mite subprocess tests (tests/test_mite_scenario.py, tests/test_mite_distributed.py)
read back and check: mite's collector files, nginx's access log, the kernel's TCP table.
mite does not load this module; reading collector files needs msgpack (a mite dependency)."""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

TESTS_DIR = Path(__file__).resolve().parent.parent

REQUESTS_PER_JOURNEY = 5  # GETs per journey in h2_journeys

# tests/servers/nginx.py's `acurl` log_format: "$remote_addr:$remote_port conn=$connection
# n=$connection_requests $server_protocol $ssl_protocol "$request" $status ..." (fields the
# fixture may add at the end are ignored).
ACCESS_LINE = re.compile(
    r"^(?P<peer>\S+) conn=(?P<conn>\d+) n=(?P<n>\d+) (?P<protocol>\S+) (?P<tls>\S+) "
    r'"(?P<method>\S+) (?P<uri>\S+) \S+" (?P<status>\d+) '
)
# The journey's URLs (mite_scenarios.h2_journeys): /?f=<flavour>&j=<journey>&s=<step>
JOURNEY_URI = re.compile(r"/\?f=(?P<flavour>alias|adapter)&j=(?P<j>\d+)&s=(?P<s>\d+)$")


def request_key(url: str) -> tuple[str, int, int]:
    """(flavour, journey, step) of a journey URL or URI."""
    match = JOURNEY_URI.search(url)
    if match is None:
        raise ValueError(f"not a journey URL: {url!r}")
    return match["flavour"], int(match["j"]), int(match["s"])


def expected_keys(journeys: int) -> set[tuple[int, int]]:
    """(journey, step) of every request that a run of ``journeys`` journeys makes."""
    return {(j, s) for j in range(journeys) for s in range(REQUESTS_PER_JOURNEY)}


def read_collector(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every message in a mite collector directory (msgpack, the collector's default format):
    the rolled files and ``current``, in the collector's order. While the collector runs, a
    file it rolls during the listing can be missed: poll, and read once more after it ends."""
    import msgpack

    directory = Path(directory)

    def order(path: Path) -> tuple[int, int]:
        if path.name == "current":
            return (1, 0)
        return (0, int(path.name.rsplit("_", 1)[-1]))  # start_end_counter

    messages: list[dict[str, Any]] = []
    files = [p for p in directory.iterdir() if p.name != "current_start_time"]
    for path in sorted(files, key=order):
        try:
            fh = open(path, "rb")
        except FileNotFoundError:  # `current`, rolled while we list: read again to see it
            continue
        with fh:
            unpacker = msgpack.Unpacker(fh, raw=False, strict_map_key=False, use_list=False)
            messages.extend(unpacker)
    return messages


def of_type(messages: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("type") in types]


def read_access_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """nginx's access log lines as dicts (conn, n, protocol, method, uri, status, peer)."""
    entries = []
    for line in Path(path).read_text().splitlines():
        match = ACCESS_LINE.match(line)
        if match is None:
            raise ValueError(f"unexpected access log line: {line!r}")
        entry: dict[str, Any] = match.groupdict()
        entry["conn"] = int(entry["conn"])
        entry["n"] = int(entry["n"])
        entry["status"] = int(entry["status"])
        entries.append(entry)
    return entries


def wait_for(fn: Callable[[], T], done: Callable[[T], bool], timeout: float, step=0.1) -> T:
    """Calls ``fn`` until ``done(result)`` or ``timeout`` seconds; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(step)


# --------------------------------------------------------------------------- checks

# What mite_http (mite 2.11.0, mite_http/__init__.py) sends in every http_metrics message,
# then what acurl_rs.mite adds. tests/test_mite.py checks the same sets.
MITE_HTTP_FIELDS = {
    "start_time",  # response.start_time: int, seconds since the epoch
    "effective_url",  # response.url
    "response_code",  # response.status_code
    "dns_time",  # namelookup_time, s
    "connect_time",  # connect_time, s
    "tls_time",  # appconnect_time, s
    "transfer_start_time",  # pretransfer_time, s
    "first_byte_time",  # starttransfer_time, s
    "total_time",  # total_time, s
    "primary_ip",
    "method",  # response.request.method: bytes, b"GET"
    "download_size",  # float, bytes
}
ADAPTER_EXTRA_FIELDS = {"http_version", "conn_id", "queue_time", "tls_resumed"}
# mite's Context.send: type, time, transaction(_id) and the runner's id data.
CONTEXT_FIELDS = {
    "type",
    "time",
    "transaction",
    "transaction_id",
    "test",
    "runner_id",
    "journey",
    "context_id",
    "scenario_id",
    "scenario_data_id",
}
JOURNEY_FIELDS = {"flavour", "journey_no"}  # the journey's additional_metrics


def mite_env(nginx: Any, flavour: str, **extra: str) -> dict[str, str]:
    """The subprocess environment: the scenario package importable, acurl_rs's CA from
    SSL_CERT_FILE (mite's mite_http passes no options), the flavour; no proxy variables
    (conftest scrubs them from os.environ)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["SSL_CERT_FILE"] = nginx.ca_path
    env["ACURL_RS_MITE_FLAVOUR"] = flavour
    env.pop("MITE_PROFILE", None)  # mite's default event loop: uvloop
    env.pop("ACURL_RS_MITE_SCOPE", None)  # the scenario's control switch: only when asked
    env.update(extra)
    return env


def check_messages(
    messages: list[dict[str, Any]], *, flavours: set[str], journeys: int
) -> list[dict[str, Any]]:
    """What every run must have sent, whatever its flavours: exactly one ``http_metrics`` per
    request of the ``journeys`` journeys (each journey once), mite's fields, no error of any
    kind, and every transaction closed without error. Returns the ``http_metrics``."""
    counts = Counter(m["type"] for m in messages)
    assert not of_type(messages, "error", "exception", "http_error"), counts
    metrics = of_type(messages, "http_metrics")
    assert len(metrics) == journeys * REQUESTS_PER_JOURNEY, counts
    keys = [request_key(m["effective_url"]) for m in metrics]
    assert len(set(keys)) == len(keys), "a request reported twice"
    assert {(j, s) for _f, j, s in keys} == expected_keys(journeys)
    for msg, (flavour, j, _s) in zip(metrics, keys, strict=True):
        assert msg["flavour"] == flavour and flavour in flavours
        assert msg["journey_no"] == j
        assert msg["response_code"] == 200
        assert msg["method"] == b"GET"
        assert msg["primary_ip"] == "127.0.0.1"
        assert msg["download_size"] == 6.0  # "hello\n"
        assert 0.0 < msg["total_time"] < 10.0
        assert msg["journey"] == "mite_scenarios.h2_journeys:journey"
        assert msg["transaction"].startswith("__root__ :: get ")
        expected = MITE_HTTP_FIELDS | CONTEXT_FIELDS | JOURNEY_FIELDS
        if flavour == "adapter":
            assert msg["http_version"] == "2"
            # acurl_rs.mite's additions, and maybe fields of its own
            assert expected | ADAPTER_EXTRA_FIELDS <= msg.keys()
        else:
            assert msg.keys() == expected  # mite's own mite_http: exactly mite's fields
    # each journey: one transaction per request plus mite's __root__, none failed
    txns = of_type(messages, "txn")
    assert len(txns) == journeys * (REQUESTS_PER_JOURNEY + 1), counts
    assert not [t for t in txns if t["had_error"]]
    return metrics


def check_nginx(nginx: Any, *, journeys: int) -> list[dict[str, Any]]:
    """nginx's own view (a private instance): exactly the journeys' requests, each once, all
    HTTP/2 over TLS and 200, and no client connection left open. Returns the log entries."""
    expected = journeys * REQUESTS_PER_JOURNEY
    entries = wait_for(
        lambda: read_access_log(nginx.access_log_path), lambda e: len(e) >= expected, 5.0
    )
    assert len(entries) == expected
    keys = [request_key(e["uri"]) for e in entries]
    assert {(j, s) for _f, j, s in keys} == expected_keys(journeys)
    assert len(set(keys)) == len(keys)
    assert {e["protocol"] for e in entries} == {"HTTP/2.0"}
    assert {e["status"] for e in entries} == {200}
    assert {e["method"] for e in entries} == {"GET"}
    # every client connection is closed once the mite process has exited (the status
    # request itself is the one active connection)
    status = wait_for(nginx.stub_status, lambda s: s["active"] == 1, 5.0)
    assert status["active"] == 1, status
    return entries


# --------------------------------------------------------------------------- TCP table

_TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "0A": "LISTEN"}


def tcp_sockets() -> list[tuple[int, int, str]]:
    """(local port, remote port, state) of every TCP socket in this network namespace
    (/proc/net/tcp and tcp6)."""
    sockets = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            sockets.append(
                (
                    int(local.rsplit(":", 1)[1], 16),
                    int(remote.rsplit(":", 1)[1], 16),
                    _TCP_STATES.get(state, state),
                )
            )
    return sockets


def listening(port: int) -> bool:
    return any(lp == port and st == "LISTEN" for lp, _rp, st in tcp_sockets())


def connections_to(port: int) -> int:
    """Established client connections to ``port`` (counted on the client's side)."""
    return sum(1 for _lp, rp, st in tcp_sockets() if rp == port and st == "ESTABLISHED")


def open_on(ports: set[int]) -> list[tuple[int, int, str]]:
    """Sockets still listening on or connected through ``ports`` (TIME_WAIT excluded)."""
    return [s for s in tcp_sockets() if (s[0] in ports or s[1] in ports) and s[2] != "TIME_WAIT"]
