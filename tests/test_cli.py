"""The `python -m acurl_rs` load generator, run as a subprocess the way a user runs it.

Each run is small (hundreds to a few thousand requests, or about a second) so the file stays
fast; the numbers checked are counts that must be exact, not speeds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from acurl_rs._processes import split_evenly, worker_jobs
from acurl_rs.cli import RunConfig, UsageError, parse_config

CLI_TIMEOUT_S = 60


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acurl_rs", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def run_cli_without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs the CLI as if the optional `module` were not installed."""
    code = (
        f"import sys; sys.modules[{module!r}] = None; "
        "from acurl_rs.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def run_json(*args: str) -> dict[str, Any]:
    """Runs with --json and expects success: stdout must be exactly one JSON document."""
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "not a terminal: no progress output expected"
    return json.loads(result.stdout)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "acurl_rs", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def children_of(pid: int) -> dict[int, str]:
    """The live child processes of `pid` (from /proc), with their command lines."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == pid and state != "Z":
            children[int(entry)] = cmdline.replace(b"\0", b" ").decode()
    return children


def is_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_for_workers(cli: subprocess.Popen[str], count: int) -> dict[int, str]:
    """Waits until the CLI has `count` worker processes; returns all its children."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = children_of(cli.pid)
        if sum("spawn_main" in cmd for cmd in children.values()) == count:
            return children
        time.sleep(0.05)
    cli.kill()
    raise AssertionError(f"the CLI never had {count} worker processes")


def assert_all_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    while any(is_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in pids if is_running(pid)] == [], "left behind"


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("acurl-rs: error: ")
    return lines[0]


# -- the embedded target ---------------------------------------------------------------------


def test_embedded_target_json_report():
    report = run_json("-n", "2000", "-c", "8")
    assert report["embedded_target"] is True
    assert report["url"].startswith("http://127.0.0.1:")
    assert (report["requests"], report["succeeded"], report["failed"]) == (2000, 2000, 0)
    assert report["status_codes"] == {"200": 2000}
    assert report["http_versions"] == {"1.1": 2000}
    assert report["errors"] == []
    # Eight keep-alive workers on one session: eight connections, each opened once.
    assert report["connections_opened"] == 8
    latency = report["latency_ms"]
    assert set(latency) >= {"p50", "p90", "p99", "p99.9", "max", "mean"}
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p99.9"]
    assert latency["p99.9"] <= latency["max"]
    assert set(report["phases_ms"]) == {
        "namelookup",
        "connect",
        "appconnect",
        "starttransfer",
        "total",
    }
    assert report["phases_ms"]["starttransfer"]["mean"] > 0
    assert report["requests_per_second"] > 0


def test_embedded_target_text_report_is_quiet_off_a_terminal():
    result = run_cli("-n", "500")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "(embedded target)" in out
    assert "500 answered, 0 failed" in out
    for label in ("p50", "p90", "p99", "p99.9", "max", "starttransfer", "appconnect"):
        assert label in out
    assert "Status codes   200: 500" in out
    assert "Errors         none" in out
    assert "HTTP versions  HTTP/1.1: 500" in out


def test_duration_mode_stops_on_time():
    report = run_json("-d", "0.5", "-c", "4")
    assert 0.5 <= report["elapsed_s"] < 3.0
    assert report["requests"] > 0 and report["failed"] == 0


# -- counts against a server that counts too -----------------------------------------------


def test_counts_match_what_the_server_saw(test_server):
    test_server.reset_counters()
    report = run_json(
        test_server.url("/status/201"), "-n", "300", "-c", "6", "--sessions", "3", "-X", "PUT"
    )
    assert report["method"] == "PUT"
    assert report["requests"] == report["succeeded"] == 300
    assert test_server.requests_served == 300
    assert report["status_codes"] == {"201": 300}
    assert report["connections_opened"] == test_server.connections_accepted


def test_error_statuses_are_answers_not_failures(test_server):
    test_server.reset_counters()
    report = run_json(test_server.url("/status/503"), "-n", "50")
    assert report["status_codes"] == {"503": 50}
    assert report["failed"] == 0
    assert test_server.requests_served == 50


def test_open_model_launches_rate_times_duration(test_server):
    test_server.reset_counters()
    report = run_json(test_server.url("/echo"), "--rate", "200", "-d", "1")
    assert report["model"] == "open"
    assert report["rate"] == 200
    assert report["requests"] == report["succeeded"] == 200
    assert test_server.requests_served == 200
    # The last request is due at 0.995 s: the run cannot end much sooner than that.
    assert 0.95 <= report["elapsed_s"] < 3.0


def test_open_model_latency_includes_the_servers_delay(test_server):
    # 20 requests/s at a server that takes 0.2 s: several are in flight at once, and each
    # one's latency still counts from when it was due.
    report = run_json(test_server.url("/slow?delay=0.2"), "--rate", "20", "-d", "0.5")
    assert report["requests"] == report["succeeded"] == 10
    assert report["latency_ms"]["p50"] >= 200
    assert report["connections_opened"] > 1


# -- several processes ------------------------------------------------------------------------


def test_two_processes_against_the_embedded_target():
    report = run_json("-n", "2000", "-c", "8", "-P", "2")
    assert report["processes"] == 2
    assert (report["requests"], report["succeeded"], report["failed"]) == (2000, 2000, 0)
    assert report["status_codes"] == {"200": 2000}
    assert report["connections_opened"] == 8
    assert report["sessions"] == 2  # a process has at least one session of its own
    per_process = report["per_process"]
    assert [(p["process"], p["requests"], p["concurrency"]) for p in per_process] == [
        (1, 1000, 4),
        (2, 1000, 4),
    ]
    # One embedded target per process, so the target scales with the client.
    assert len({p["url"] for p in per_process}) == 2
    assert all(p["cpu_s"] > 0 for p in per_process)
    assert report["cpu"]["client_s"] > 0 and report["cpu"]["target_s"] is not None
    # Merged HDR histograms: every response counted once, percentiles in order.
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert report["percentiles_from"] == "hdr"


def test_two_processes_counts_match_what_the_server_saw(test_server):
    test_server.reset_counters()
    report = run_json(
        test_server.url("/status/201"), "-n", "301", "-c", "6", "--sessions", "3", "-P", "2"
    )
    assert report["requests"] == report["succeeded"] == 301
    assert test_server.requests_served == 301
    assert report["status_codes"] == {"201": 301}
    assert report["connections_opened"] == test_server.connections_accepted
    # The remainder goes to the first process: 151 + 150 requests, 2 + 1 sessions.
    shares = [(p["requests"], p["concurrency"], p["sessions"]) for p in report["per_process"]]
    assert shares == [(151, 3, 2), (150, 3, 1)]
    assert report["sessions"] == 3


def test_processes_split_the_rate(test_server):
    test_server.reset_counters()
    report = run_json(test_server.url("/echo"), "--rate", "200", "-d", "1", "-P", "3")
    assert report["rate"] == 200 and report["processes"] == 3
    assert report["requests"] == report["succeeded"] == 200
    assert test_server.requests_served == 200
    per_process = report["per_process"]
    assert [p["requests"] for p in per_process] == [67, 67, 66]
    assert [p["rate"] for p in per_process] == pytest.approx([200 / 3] * 3)
    # Each takes every third slot of the one schedule: the last is due at 0.995 s.
    assert 0.95 <= report["elapsed_s"] < 3.0


def test_duration_mode_with_two_processes():
    report = run_json("-d", "0.5", "-c", "4", "-P", "2")
    assert 0.5 <= report["elapsed_s"] < 3.0
    assert report["failed"] == 0
    assert all(p["requests"] > 0 and p["elapsed_s"] >= 0.5 for p in report["per_process"])
    assert report["requests"] == sum(p["requests"] for p in report["per_process"])


def test_plot_from_two_processes(tmp_path: Path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "run.png"
    result = run_cli("-n", "1000", "-P", "2", "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    assert "Processes      2: 500 + 500 requests" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_killed_worker_stops_the_others_and_exits_1():
    cli = start_cli("-d", "30", "-c", "4", "-P", "2", "--json")
    children = wait_for_workers(cli, 2)
    time.sleep(0.5)  # Let the run get going.
    worker = min(pid for pid, cmd in children.items() if "spawn_main" in cmd)
    os.kill(worker, signal.SIGKILL)
    stdout, stderr = cli.communicate(timeout=15)
    assert cli.returncode == 1
    result = subprocess.CompletedProcess(cli.args, cli.returncode, stdout, stderr)
    line = assert_one_line_error(result)
    assert "was killed by SIGKILL before reporting; the others were stopped" in line
    assert stdout == ""
    # The other worker and both embedded targets went with it.
    assert_all_gone(list(children))


def test_ctrl_c_stops_every_process_and_still_reports():
    cli = start_cli("-d", "30", "-c", "4", "-P", "2", "--json")
    children = wait_for_workers(cli, 2)
    time.sleep(1.0)
    cli.send_signal(signal.SIGINT)
    stdout, stderr = cli.communicate(timeout=15)
    assert cli.returncode == 130, stderr
    report = json.loads(stdout)
    assert report["stopped_early"] == "interrupted"
    assert report["elapsed_s"] < 10
    assert all(p["requests"] > 0 for p in report["per_process"])
    assert_all_gone(list(children))


# -- nginx: TLS and HTTP/2 ------------------------------------------------------------------


def test_http2_over_tls_against_nginx(nginx):
    before = nginx.stub_status()["accepts"]
    report = run_json(
        nginx.https_url + "/",
        "--http2",
        "--cacert",
        str(nginx.ca_path),
        "-n",
        "1000",
        "-c",
        "20",
        "--sessions",
        "4",
        "--connection-scope",
        "session",
    )
    # stub_status counts its own connection: one per call.
    accepted = nginx.stub_status()["accepts"] - before - 1
    assert report["http_versions"] == {"2": 1000}
    assert report["status_codes"] == {"200": 1000}
    # Five streams per session multiplex over that session's one connection.
    assert 4 <= report["connections_opened"] <= accepted <= 8
    assert report["phases_ms"]["appconnect"]["mean"] > 0


def test_insecure_http1_against_nginx_in_wrapper_scope(nginx):
    before = nginx.stub_status()["accepts"]
    report = run_json(
        nginx.https_url + "/",
        "--http1.1",
        "--insecure",
        "-n",
        "400",
        "-c",
        "5",
        "--sessions",
        "5",
        "--connection-scope",
        "wrapper",
    )
    accepted = nginx.stub_status()["accepts"] - before - 1
    assert report["http_versions"] == {"1.1": 400}
    assert report["connection_scope"] == "wrapper"
    assert report["connections_opened"] == accepted
    assert 5 <= accepted <= 10


def test_tls_failure_without_the_ca_is_reported_by_category(nginx):
    result = run_cli(nginx.https_url + "/", "-n", "20", "--json")
    assert result.returncode == 1
    line = assert_one_line_error(result)
    assert "all 20 requests failed" in line and "tls" in line
    report = json.loads(result.stdout)
    assert report["succeeded"] == 0
    assert [(e["category"], e["curl_code"], e["count"]) for e in report["errors"]] == [
        ("tls", 60, 20)
    ]


# -- bad input and failed runs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://127.0.0.1/"], "ftp:// is not http:// or https://"),
        (["127.0.0.1:8080/"], "no scheme, use http:// or https://"),
        (["http:///path"], "no host"),
        (["http://127.0.0.1:99999/"], "invalid port"),
        (["-H", "no-colon-here"], "bad header"),
        (["-H", "bad name: x"], "bad header"),
        (["-n", "0"], "positive whole number"),
        (["-n", "many"], "positive whole number"),
        (["-c", "-3"], "positive whole number"),
        (["-d", "nan"], "positive number"),
        (["--rate", "0"], "positive number"),
        (["-n", "5", "-d", "1"], "not allowed with"),
        (["--rate", "10", "-c", "2"], "do not mix"),
        (["--http1.1", "--http2"], "not allowed with"),
        (["--insecure", "--cacert", "ca.pem"], "not allowed with"),
        (["--cacert", "/nonexistent/ca.pem"], "no such file"),
        (["--data", "@/nonexistent/body"], "--data"),
        (["--connection-scope", "global"], "invalid choice"),
        (["-P", "0"], "positive whole number or 'auto'"),
        (["-P", "x"], "positive whole number or 'auto'"),
        (["--processes", "-2"], "positive whole number or 'auto'"),
        (["-P", "3", "-c", "2"], "-P 3 is more than the 2 workers (-c)"),
        (["-P", "3", "-n", "2"], "-P 3 is more than the 2 requests (-n)"),
        (["--rate", "1", "-d", "2", "-P", "3"], "-P 3 is more than the 2 requests"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in assert_one_line_error(result)
    assert result.stdout == ""


def test_unreachable_port_fails_every_request_and_exits_1():
    result = run_cli(f"http://127.0.0.1:{closed_port()}/", "-n", "50", "--json")
    assert result.returncode == 1
    line = assert_one_line_error(result)
    assert "all 50 requests failed" in line and "connect" in line
    report = json.loads(result.stdout)
    assert (report["succeeded"], report["failed"]) == (0, 50)
    assert report["errors"][0]["category"] == "connect"
    assert report["errors"][0]["curl_code"] == 7


def test_a_dead_target_stops_the_run_early():
    # Duration mode would hammer a dead port for a minute; it gives up instead.
    result = run_cli(f"http://127.0.0.1:{closed_port()}/", "-d", "60", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["elapsed_s"] < 10
    assert report["stopped_early"].endswith("all failed")


# -- the plot -------------------------------------------------------------------------------


def test_plot_writes_a_png(tmp_path: Path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "run.png"
    result = run_cli("-n", "1000", "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    assert f"Plot           {plot}" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_into_a_missing_directory_is_refused_before_the_run(tmp_path: Path):
    result = run_cli("--plot", str(tmp_path / "no" / "such" / "dir.png"))
    assert result.returncode == 2
    assert "directory does not exist" in assert_one_line_error(result)
    assert result.stdout == ""


# -- without the optional extras ------------------------------------------------------------


def test_exact_percentiles_without_hdrhistogram():
    result = run_cli_without("hdrh", "-n", "1000", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["percentiles_from"] == "exact"
    # Exact nearest-rank percentiles: p99.9 of 1000 values is the 999th, below the max.
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["p99.9"] <= latency["max"]


def test_hdr_percentiles_when_installed():
    pytest.importorskip("hdrh")
    assert run_json("-n", "100")["percentiles_from"] == "hdr"


def test_plot_without_matplotlib_fails_before_the_run(tmp_path: Path):
    result = run_cli_without("matplotlib", "--plot", str(tmp_path / "run.png"))
    assert result.returncode == 1
    assert "pip install 'acurl_rs[plot]'" in assert_one_line_error(result)
    assert result.stdout == "", "the load must not run when its plot cannot be drawn"


# -- argument parsing in-process ------------------------------------------------------------


def test_data_implies_post_and_headers_are_parsed(tmp_path: Path):
    body = tmp_path / "body.json"
    body.write_bytes(b'{"a": 1}')
    config: RunConfig = parse_config(
        ["http://localhost:1/x", "--data", f"@{body}", "-H", "Content-Type: application/json"]
    )
    assert config.method == "POST"
    assert config.data == b'{"a": 1}'
    assert config.headers == (("Content-Type", "application/json"),)
    assert config.requests == 10_000 and config.duration is None
    assert config.model == "closed"


def test_defaults_without_a_url():
    config = parse_config([])
    assert config.url is None
    assert (config.method, config.http_version, config.verify) == ("GET", "auto", True)
    assert (config.connection_scope, config.processes) == ("wrapper", 1)
    assert config.progress is False  # pytest captures stdout: not a terminal


def test_open_model_total_is_rate_times_duration():
    assert parse_config(["--rate", "250", "-d", "2"]).open_model_total() == 500
    assert parse_config(["--rate", "250", "-n", "7"]).open_model_total() == 7


def test_usage_error_is_raised_not_exited():
    with pytest.raises(UsageError, match="bad header"):
        parse_config(["-H", ":x"])


def test_processes_auto_is_one_per_core_capped_by_the_workers():
    cores = len(os.sched_getaffinity(0))
    assert parse_config(["-P", "auto"]).processes == min(cores, 10)
    assert parse_config(["-P", "auto", "-c", "1"]).processes == 1
    assert parse_config(["-P", "auto", "--rate", "5", "-n", "1"]).processes == 1


def test_split_evenly_gives_the_remainder_to_the_first():
    assert split_evenly(10, 3) == [4, 3, 3]
    assert split_evenly(2, 2) == [1, 1]
    assert split_evenly(5, 1) == [5]


def test_open_model_processes_interleave_one_schedule():
    config = parse_config(["--rate", "100", "-d", "1", "-P", "4", "--sessions", "6"])
    jobs = worker_jobs(config, ["http://127.0.0.1:1/"])
    assert [job.config.requests for job in jobs] == [25, 25, 25, 25]
    assert [job.config.sessions for job in jobs] == [2, 2, 1, 1]
    # Process i sends requests i, i+4, ...: first due at i/100 s, then every 4/100 s.
    assert [job.phase for job in jobs] == pytest.approx([0.0, 0.01, 0.02, 0.03])
    assert all(job.config.rate == 25 and job.config.duration is None for job in jobs)
