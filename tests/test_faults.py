"""Faults beyond test_transport_errors.py: each one is the documented AcurlError subclass with
curl's code and text, arrives within its timeout (not at some later timeout), and the same
session serves the next request.

Name resolution failures run in a subprocess inside an empty network namespace (``unshare
-n``, only ``lo`` up), so the resolver's query provably cannot leave the machine.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import acurl_rs

TESTS_DIR = Path(__file__).parent

# mode -> (class, allowed curl codes, fragment of curl's text). Racy modes allow two codes:
# a close/reset right after accept is seen while sending (56) or when reading (7, 52).
FAULTS = {
    "close_after_accept": (acurl_rs.ProtocolError, {52, 56}, ""),
    "reset_after_accept": ((acurl_rs.ConnectError, acurl_rs.ProtocolError), {7, 56}, ""),
    "close_after_request": (acurl_rs.ProtocolError, {52}, "Empty reply from server"),
    "close_mid_headers": (acurl_rs.ProtocolError, {8}, "before the end of the response headers"),
    "short_body": (acurl_rs.ProtocolError, {18}, "90 bytes missing"),
    "invalid_status_line": (acurl_rs.ProtocolError, {1}, "Unsupported HTTP/1"),
    "http09": (acurl_rs.ProtocolError, {1}, "HTTP/0.9"),
    "huge_header": (acurl_rs.ProtocolError, {100}, "grew larger than allowed"),
    "broken_chunked": (acurl_rs.ProtocolError, {18}, "outstanding read data"),
}


def check_error(err: BaseException, mode: str) -> None:
    cls, codes, fragment = FAULTS[mode]
    assert isinstance(err, cls), (mode, err)
    assert err.code in codes, (mode, err.code, str(err))
    assert str(err).startswith(f"curl failed with code {err.code} "), str(err)
    assert fragment in err.curl_message, (mode, err.curl_message)


@pytest.mark.parametrize("mode", ["close_after_request", "http09", "huge_header"])
async def test_broken_reply_fails_fast_and_the_session_goes_on(fault_server, test_server, mode):
    # Modes not in test_transport_errors.py; a 1 MiB header is refused, not buffered forever.
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        started = time.monotonic()
        with pytest.raises(acurl_rs.AcurlError) as info:
            await s.get(fault_server.url(mode), timeout=10)
        assert time.monotonic() - started < 2, "failed by its own cause, not the timeout"
        check_error(info.value, mode)
        assert (await s.get(test_server.url("/echo"))).status_code == 200
        s.close()


async def test_every_fault_at_once_fails_only_its_own_request(fault_server, test_server):
    """One session, all faults and good requests concurrently: no cross-talk, nothing left."""
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        modes = list(FAULTS) * 2
        good = [s.get(test_server.url(f"/echo?i={i}")) for i in range(10)]
        started = time.monotonic()
        results = await asyncio.gather(
            *(s.get(fault_server.url(m), timeout=10) for m in modes),
            *good,
            return_exceptions=True,
        )
        assert time.monotonic() - started < 3
        for mode, result in zip(modes, results[: len(modes)], strict=True):
            check_error(result, mode)
        assert [r.status_code for r in results[len(modes) :]] == [200] * 10
        assert wrapper._native.in_flight == 0
        assert wrapper._native.registrations() == ([], False)
        assert (await s.get(test_server.url("/echo"))).status_code == 200
        s.close()


def _require_accept_nothing(fault_server) -> None:
    if not fault_server.accept_nothing_verified:
        pytest.skip("this kernel completes connects to a full accept queue")


@pytest.mark.parametrize("kwargs", [{"connect_timeout": 0.3}, {"timeout": 0.3}])
async def test_connect_timeout_fires_on_time_and_the_session_goes_on(
    fault_server, test_server, kwargs
):
    # A connect that never completes is bounded by connect_timeout, or by the total timeout.
    _require_accept_nothing(fault_server)
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        started = time.monotonic()
        with pytest.raises(acurl_rs.AcurlTimeoutError) as info:
            await s.get(fault_server.url("accept_nothing"), **kwargs)
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 1.5, elapsed
        assert isinstance(info.value, TimeoutError)
        assert info.value.code == 28 and "timed out" in info.value.curl_message
        assert info.value.category == "timeout"
        assert (await s.get(test_server.url("/echo"))).status_code == 200
        s.close()


async def test_total_timeout_is_per_request_over_the_session_default(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(timeout=0.6)
        started = time.monotonic()
        with pytest.raises(acurl_rs.AcurlTimeoutError) as info:
            await s.get(test_server.url("/sleep-forever"))
        assert 0.55 <= time.monotonic() - started < 2
        assert info.value.code == 28
        # A longer per-request timeout wins over the session's default...
        r = await s.get(test_server.url("/slow?delay=0.8"), timeout=5)
        assert r.status_code == 200 and r.body == b"slow"
        # ...and so does a shorter one.
        started = time.monotonic()
        with pytest.raises(acurl_rs.AcurlTimeoutError):
            await s.get(test_server.url("/sleep-forever"), timeout=0.1)
        assert time.monotonic() - started < 0.5
        s.close()


async def test_a_trickling_body_times_out_or_completes_by_the_timeout(fault_server, test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        started = time.monotonic()
        with pytest.raises(acurl_rs.AcurlTimeoutError) as info:
            await s.get(fault_server.url("trickle", "/?n=10&interval=0.1"), timeout=0.45)
        assert time.monotonic() - started < 1.2
        assert info.value.code == 28
        # curl reports the partial progress: some, not all, of the body arrived.
        assert "out of 10 bytes received" in info.value.curl_message
        assert "with 0 out of" not in info.value.curl_message
        r = await s.get(fault_server.url("trickle", "/?n=10&interval=0.05"), timeout=5)
        assert r.status_code == 200 and r.body == b"abcdefghij"
        assert (await s.get(test_server.url("/echo"))).status_code == 200
        s.close()


# -- name resolution in an empty network namespace ------------------------------------------

RESOLVE_SCRIPT = textwrap.dedent(
    """
    import asyncio, errno, json, socket, sys, time
    sys.path.insert(0, sys.argv[1])
    import acurl_rs
    from servers.app import TestServer

    out = {"interfaces": sorted(name for _, name in socket.if_nameindex())}
    # The resolver's nameserver is unreachable from here: no route, nothing is sent.
    nameservers = [line.split()[1] for line in open("/etc/resolv.conf")
                   if line.startswith("nameserver")]
    out["nameserver_errnos"] = []
    for ns in nameservers:
        family = socket.AF_INET6 if ":" in ns else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((ns, 53))
                out["nameserver_errnos"].append(0)
            except OSError as exc:
                out["nameserver_errnos"].append(exc.errno)

    def outcome(exc):
        return {"class": type(exc).__name__, "code": getattr(exc, "code", None),
                "message": str(exc), "is_value_error": isinstance(exc, ValueError)}

    async def main():
        server = TestServer()
        server.start()
        try:
            async with acurl_rs.CurlWrapper() as wrapper:
                s = wrapper.session()
                started = time.monotonic()
                try:
                    await s.get("http://acurl-rs-unresolvable.invalid/", timeout=10)
                    out["unresolvable"] = {"class": None}
                except Exception as exc:
                    out["unresolvable"] = outcome(exc)
                out["unresolvable"]["elapsed"] = time.monotonic() - started
                out["next_status"] = (await s.get(server.url("/echo"))).status_code
                try:
                    await s.get("http:///acurl-rs-path-segment/x", timeout=10)
                    out["empty_authority"] = {"class": None}
                except Exception as exc:
                    out["empty_authority"] = outcome(exc)
                s.close()
        finally:
            server.stop()

    asyncio.run(main())
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def resolve_results(tmp_path_factory) -> dict:
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None:
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    if subprocess.run([unshare, "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n is not permitted here (needs root or user namespaces)")
    script = tmp_path_factory.mktemp("resolve") / "resolve.py"
    script.write_text(RESOLVE_SCRIPT)
    proc = subprocess.run(
        [
            unshare,
            "-n",
            "sh",
            "-c",
            f'{ip} link set lo up && exec "$0" "$@"',
            sys.executable,
            str(script),
            str(TESTS_DIR),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    # The proof that nothing left the machine: only loopback exists, the nameserver has no route.
    assert results["interfaces"] == ["lo"]
    assert results["nameserver_errnos"] and all(results["nameserver_errnos"])
    return results


def test_unresolvable_name_is_a_resolve_error_and_the_session_goes_on(resolve_results):
    result = resolve_results["unresolvable"]
    assert result["class"] == "ResolveError", result
    assert result["code"] == 6
    assert result["message"].startswith("curl failed with code 6 ")
    assert "acurl-rs-unresolvable.invalid" in result["message"]
    assert result["elapsed"] < 5
    assert resolve_results["next_status"] == 200


def test_a_url_with_an_empty_host_is_refused_without_a_lookup(resolve_results):
    result = resolve_results["empty_authority"]
    assert result["class"] == "InvalidURLError" or result["is_value_error"], result
