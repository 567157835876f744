"""HTTP/2 faults against servers/h2server.py, over cleartext prior knowledge and TLS with ALPN:
a stream reset fails only its own request, GOAWAY never hangs streams in flight, and a peer
that stops reading turns a large upload into a timeout, not a hang."""

from __future__ import annotations

import asyncio
import time

import pytest

import acurl_rs
from servers.h2server import H2Server

TRANSPORTS = {"h2c": (False, "2-prior-knowledge"), "tls": (True, "2")}


@pytest.fixture(scope="module", params=list(TRANSPORTS))
def h2(request):
    tls, http_version = TRANSPORTS[request.param]
    server = H2Server(tls=tls).start()
    server.http_version = http_version
    try:
        yield server
    finally:
        server.stop()


def new_session(
    wrapper: acurl_rs.CurlWrapper, h2: H2Server, scope: str = "wrapper"
) -> acurl_rs.Session:
    return wrapper.session(http_version=h2.http_version, verify=h2.ca_path, connection_scope=scope)


async def test_rst_stream_fails_only_that_stream(h2):
    h2.reset()
    async with acurl_rs.CurlWrapper() as wrapper:
        s = new_session(wrapper, h2)
        paths = ["/ok/1?delay=0.2", "/rst", "/ok/2?delay=0.2", "/ok/3?delay=0.2"]
        results = await asyncio.wait_for(
            asyncio.gather(*(s.get(h2.url(p)) for p in paths), return_exceptions=True), 5
        )
        err = results[1]
        assert isinstance(err, acurl_rs.HTTP2Error), err
        assert err.code == 92 and err.category == "http2"
        assert "reset by server" in err.curl_message and "INTERNAL_ERROR" in err.curl_message
        ok = [results[i] for i in (0, 2, 3)]
        assert [r.body for r in ok] == [b"ok " + paths[i].encode() for i in (0, 2, 3)]
        assert {r.http_version for r in ok} == {"2"}
        assert len({r.conn_id for r in ok}) == 1
        assert h2.connections == 1, "all four streams shared one connection"
        # The reset killed a stream, not the connection: the next request reuses it.
        after = await s.get(h2.url("/ok/after"))
        assert after.status_code == 200 and after.num_connects == 0
        assert after.conn_id == ok[0].conn_id
        s.close()


async def test_a_reset_post_is_not_replayed(h2):
    # INTERNAL_ERROR does not say the request went unprocessed (RFC 9113 8.7): no retry.
    h2.reset()
    async with acurl_rs.CurlWrapper() as wrapper:
        s = new_session(wrapper, h2)
        paths = ["/ok/1?delay=0.2", "/rst", "/ok/2?delay=0.2"]
        results = await asyncio.wait_for(
            asyncio.gather(
                *(s.post(h2.url(p), data=b"order") for p in paths), return_exceptions=True
            ),
            5,
        )
        assert isinstance(results[1], acurl_rs.HTTP2Error)
        assert [p for _, _, p in h2.streams].count("/rst") == 1
        s.close()


async def test_refused_streams_are_retried_a_bounded_number_of_times(h2):
    h2.reset()
    async with acurl_rs.CurlWrapper() as wrapper:
        s = new_session(wrapper, h2)
        started = time.monotonic()
        refused, ok = await asyncio.wait_for(
            asyncio.gather(s.get(h2.url("/refuse")), s.get(h2.url("/ok")), return_exceptions=True),
            10,
        )
        assert time.monotonic() - started < 5
        assert isinstance(refused, acurl_rs.AcurlError), refused
        assert refused.code is not None and refused.curl_message
        assert ok.status_code == 200
        assert [p for _, _, p in h2.streams].count("/refuse") <= 20
        s.close()


@pytest.mark.parametrize("mode", ["goaway", "goaway_abrupt"])
async def test_goaway_below_streams_in_flight_never_hangs_them(h2, mode):
    h2.reset(mode)
    async with acurl_rs.CurlWrapper() as wrapper:
        s = new_session(wrapper, h2)
        paths = [f"/ok/{i}" for i in range(4)]
        started = time.monotonic()
        results = await asyncio.wait_for(
            asyncio.gather(*(s.get(h2.url(p), timeout=5) for p in paths), return_exceptions=True),
            10,
        )
        assert time.monotonic() - started < 5
        # The server really had streams above last-stream-id in flight when it sent GOAWAY.
        (last, open_ids), *_ = h2.goaways
        assert [i for i in open_ids if i > last], h2.goaways
        for r in results:
            assert isinstance(r, (acurl_rs.AcurlError, acurl_rs.Response)), r
            if isinstance(r, acurl_rs.Response):
                assert r.status_code == 200
        if mode == "goaway":
            # The stream at last-stream-id was still answered after GOAWAY.
            assert any(isinstance(r, acurl_rs.Response) and r.body == b"ok last" for r in results)
        assert wrapper._native.in_flight == 0
        h2.mode = "normal"
        r = await asyncio.wait_for(s.get(h2.url("/ok/after"), timeout=5), 10)
        assert r.status_code == 200
        s.close()


@pytest.mark.parametrize("big_window", [False, True], ids=["h2-window", "tcp-buffers"])
async def test_upload_to_a_peer_that_stops_reading_times_out(h2, big_window):
    h2.reset("stall")
    h2.stall_big_window = big_window
    try:
        async with acurl_rs.CurlWrapper() as wrapper:
            s = new_session(wrapper, h2)
            size = 20_000_000 if big_window else 1_000_000
            started = time.monotonic()
            with pytest.raises(acurl_rs.AcurlTimeoutError) as info:
                await asyncio.wait_for(s.post(h2.url("/upload"), data=b"x" * size, timeout=0.5), 10)
            assert 0.45 <= time.monotonic() - started < 2.5
            assert info.value.code == 28
            assert wrapper._native.in_flight == 0
            assert wrapper._native.registrations() == ([], False)
            s.close()
    finally:
        h2.reset()
        h2.stall_big_window = False


@pytest.mark.parametrize("scope", ["wrapper", "session"])
async def test_after_a_stalled_upload_the_next_request_gets_a_working_connection(h2, scope):
    # Session scope starts the user's pool afresh; in wrapper scope the engine ends the
    # timed-out stream's connection (no other transfer on it), which curl then drops.
    h2.reset("stall")
    try:
        async with acurl_rs.CurlWrapper() as wrapper:
            s = new_session(wrapper, h2, scope)
            with pytest.raises(acurl_rs.AcurlTimeoutError):
                await s.post(h2.url("/upload"), data=b"x" * 1_000_000, timeout=0.5)
            h2.mode = "normal"  # new connections are answered again
            r = await asyncio.wait_for(s.get(h2.url("/ok/next"), timeout=1), 10)
            assert r.status_code == 200
            s.close()
    finally:
        h2.reset()
