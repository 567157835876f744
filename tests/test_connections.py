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
        a = wrapper.session(verify=nginx.ca_path, connection_scope="session")
        b = wrapper.session(verify=nginx.ca_path, connection_scope="session")
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


@pytest.mark.parametrize("explicit", [False, True])
async def test_wrapper_scope_shares_connections_between_sessions(nginx, explicit):
    # The default is acurl's connection model: the wrapper owns the pool its sessions share.
    options = {"connection_scope": "wrapper"} if explicit else {}
    before = nginx.stub_status()["accepts"]
    async with acurl_rs.CurlWrapper() as wrapper:
        a = wrapper.session(verify=nginx.ca_path, **options)
        b = wrapper.session(verify=nginx.ca_path, **options)
        a1 = await a.get(nginx.https_url + "/conn")
        b1 = await b.get(nginx.https_url + "/conn")
        assert a1.num_connects == 1 and b1.num_connects == 0
        assert a1.body.split()[0] == b1.body.split()[0]
        a.close()
        b.close()
    assert nginx.stub_status()["accepts"] - before - 1 == 1


async def test_closing_a_session_closes_its_connections(nginx):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=nginx.ca_path, connection_scope="session")
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
    with pytest.raises(ValueError, match="tls_sessions"):
        wrapper.session(connection_scope="session", tls_sessions="shared")
    wrapper.close()


def _resumed_in_access_log(nginx, marker: str) -> list[str]:
    """nginx's own $ssl_session_reused ("r" or ".") for the requests whose path has `marker`."""
    lines = nginx.access_log_path.read_text().splitlines()
    return [line.rsplit("resumed=", 1)[1] for line in lines if marker in line]


async def _first_requests(nginx, marker: str, users: int, **options) -> list:
    """One request each from `users` new sessions in session scope, one after another, then a
    second request from the last user (a reused connection)."""
    responses = []
    async with acurl_rs.CurlWrapper() as wrapper:
        sessions = [
            wrapper.session(verify=nginx.ca_path, connection_scope="session", **options)
            for _ in range(users)
        ]
        for s in sessions:
            responses.append(await s.get(f"{nginx.https_url}/conn?{marker}"))
        responses.append(await sessions[-1].get(f"{nginx.https_url}/conn?{marker}"))
        for s in sessions:
            s.close()
    return responses


async def test_session_scope_resumes_tls_from_the_wrapper_cache_by_default(nginx):
    responses = await _first_requests(nginx, "resume-default", 6)
    assert [r.num_connects for r in responses] == [1] * 6 + [0]
    assert len({r.body.split()[0] for r in responses[:6]}) == 6, "one connection per user"
    # The first user makes a full handshake; every later user's new connection resumes.
    assert [r.tls_resumed for r in responses] == [False] + [True] * 5 + [None]
    # nginx agrees: "r" for a resumed session, "." for a full handshake.
    assert _resumed_in_access_log(nginx, "resume-default") == ["."] + ["r"] * 6


async def test_tls_sessions_per_session_and_off_make_full_handshakes(nginx):
    for policy in ("session", "off"):
        responses = await _first_requests(nginx, f"resume-{policy}", 3, tls_sessions=policy)
        assert [r.tls_resumed for r in responses] == [False, False, False, None], policy
        assert _resumed_in_access_log(nginx, f"resume-{policy}") == ["."] * 4, policy


async def test_tls_resumed_is_none_for_plain_http_and_reused_connections(nginx):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=nginx.ca_path)
        plain = await s.get(nginx.http_url + "/conn")
        assert plain.num_connects == 1 and plain.tls_resumed is None
        first = await s.get(nginx.https_url + "/conn")
        again = await s.get(nginx.https_url + "/conn")
        assert first.num_connects == 1 and first.tls_resumed in (True, False)
        assert again.num_connects == 0 and again.tls_resumed is None
        s.close()


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
