"""HTTP/2 over TLS against nginx: negotiation, multiplexing, reuse, and the two pool scopes."""

from __future__ import annotations

import asyncio

import pytest

import acurl_rs


async def test_http2_is_negotiated_over_tls(nginx):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=nginx.ca_path)
        r = await s.get(nginx.https_url + "/")
        assert r.status_code == 200 and r.body == b"hello\n"
        assert r.http_version == "2"
        assert r.appconnect_time > 0
        r = await s.get(nginx.https_url + "/", http_version="1.1")
        assert r.http_version == "1.1"
        s.close()


async def test_http2_prior_knowledge_on_cleartext(nginx):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(http_version="2-prior-knowledge")
        r = await s.get(nginx.h2c_url + "/conn")
        assert r.http_version == "2"
        s.close()


async def test_concurrent_requests_multiplex_on_one_connection(nginx):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=nginx.ca_path)
        responses = await asyncio.gather(*(s.get(nginx.https_url + "/") for _ in range(100)))
        assert all(r.http_version == "2" for r in responses)
        assert len({r.conn_id for r in responses}) == 1, "PIPEWAIT: one connection, not one each"
        assert sum(r.num_connects for r in responses) == 1
        s.close()


async def test_1000_requests_over_20_sessions_without_errors(nginx):
    async with acurl_rs.CurlWrapper() as wrapper:
        sessions = [wrapper.session(verify=nginx.ca_path) for _ in range(20)]
        results = await asyncio.gather(
            *(sessions[i % 20].get(nginx.https_url + "/") for i in range(1000)),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        assert all(r.status_code == 200 for r in results)
        for s in sessions:
            s.close()


async def test_session_scope_reuses_within_and_isolates_between_sessions(nginx):
    before = nginx.stub_status()["accepts"]
    async with acurl_rs.CurlWrapper() as wrapper:
        a = wrapper.session(verify=nginx.ca_path)
        b = wrapper.session(verify=nginx.ca_path)
        a1 = await a.get(nginx.https_url + "/conn")
        a2 = await a.get(nginx.https_url + "/conn")
        b1 = await b.get(nginx.https_url + "/conn")
        assert a1.num_connects == 1 and a2.num_connects == 0
        assert a1.conn_id == a2.conn_id
        # nginx's own connection number proves it is the same TCP connection
        assert a1.body.split()[0] == a2.body.split()[0]
        assert b1.num_connects == 1
        assert b1.body.split()[0] != a1.body.split()[0]
        a.close()
        b.close()
    # one more accept is the stub_status request itself
    assert nginx.stub_status()["accepts"] - before - 1 == 2


async def test_wrapper_scope_shares_connections_between_sessions(nginx):
    before = nginx.stub_status()["accepts"]
    async with acurl_rs.CurlWrapper() as wrapper:
        a = wrapper.session(verify=nginx.ca_path, connection_scope="wrapper")
        b = wrapper.session(verify=nginx.ca_path, connection_scope="wrapper")
        a1 = await a.get(nginx.https_url + "/conn")
        b1 = await b.get(nginx.https_url + "/conn")
        assert a1.num_connects == 1 and b1.num_connects == 0
        assert a1.body.split()[0] == b1.body.split()[0]
        a.close()
        b.close()
    assert nginx.stub_status()["accepts"] - before - 1 == 1


async def test_closing_a_session_closes_its_connections(nginx):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=nginx.ca_path)
        await s.get(nginx.https_url + "/")
        active = nginx.stub_status()["active"]
        s.close()
        for _ in range(50):
            if nginx.stub_status()["active"] < active:
                break
            await asyncio.sleep(0.02)
        assert nginx.stub_status()["active"] < active


async def test_invalid_scope_and_version_are_value_errors():
    wrapper = acurl_rs.CurlWrapper()
    with pytest.raises(ValueError, match="Invalid http_version: 3"):
        wrapper.session(http_version="3")
    with pytest.raises(ValueError, match="connection_scope"):
        wrapper.session(connection_scope="global")
    wrapper.close()


@pytest.mark.parametrize("limit", ["max_total_connections", "max_host_connections"])
async def test_connection_limits_hold_in_wrapper_scope(nginx, limit):
    # curl queues transfers beyond the limit instead of opening more connections.
    before = nginx.stub_status()["accepts"]
    async with acurl_rs.CurlWrapper(**{limit: 2}) as wrapper:
        s = wrapper.session(connection_scope="wrapper", http_version="1.1")
        responses = await asyncio.gather(*(s.get(nginx.http_url + "/conn") for _ in range(20)))
        assert all(r.status_code == 200 for r in responses)
        assert len({r.conn_id for r in responses}) <= 2
        s.close()
    assert nginx.stub_status()["accepts"] - before - 1 <= 2


async def test_negative_limits_are_value_errors():
    with pytest.raises(ValueError, match="max_connects"):
        acurl_rs.CurlWrapper(max_connects=-1)
