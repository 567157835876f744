"""The cookie jar lives in the share handle: isolated per session, visible to acurl's API."""

from __future__ import annotations

import pytest

import acurl_rs


async def test_cookies_are_kept_per_session_and_isolated(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        a = wrapper.session()
        b = wrapper.session()
        await a.get(test_server.url("/set-cookie?user=alice&theme=dark"))
        r = await a.get(test_server.url("/cookies"))
        assert sorted(r.json().split("; ")) == ["theme=dark", "user=alice"]
        assert (await b.get(test_server.url("/cookies"))).json() is None
        assert a.cookies() == {"user": "alice", "theme": "dark"}
        assert r.cookies == {"user": "alice", "theme": "dark"}
        assert b.cookies() == {}
        assert len(a.get_cookie_list()) == 2
        a.erase_all_cookies()
        assert a.cookies() == {}
        a.close()
        b.close()


async def test_per_request_cookies_are_sent_but_not_stored(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        r = await s.get(
            test_server.url("/cookies"),
            cookies={"a": "1", "b": acurl_rs.Cookie("127.0.0.1", "b", "2")},
        )
        assert r.json() == "a=1; b=2"
        assert (await s.get(test_server.url("/cookies"))).json() is None
        s.close()


async def test_add_cookie_and_erase_session_cookies(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        s.add_cookie(acurl_rs.session_cookie_for_url(test_server.url("/"), "sid", "42"))
        assert (await s.get(test_server.url("/cookies"))).json() == "sid=42"
        s.erase_session_cookies()
        assert s.cookies() == {}
        s.close()


async def test_cookies_do_not_follow_a_redirect_to_another_host(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        other = test_server.url("/echo").replace("127.0.0.1", "localhost")
        r = await s.get(
            test_server.url(f"/redirect-to?url={other}"),
            cookies={"secret": "1"},
            headers={"Authorization": "Bearer x"},
            auth=("u", "p"),
        )
        headers = {n.lower() for n, _ in r.json()["headers"]}
        assert "cookie" not in headers and "authorization" not in headers
        s.close()


@pytest.mark.parametrize("scope", ["session", "wrapper"])
async def test_a_new_session_inherits_nothing_from_a_closed_one(test_server, scope):
    # Closed sessions hand their easy handles on to later sessions: the handles must arrive
    # without the old jar and (in session scope) without the old connections. In wrapper
    # scope the connection is the wrapper's and is reused, but the cookies still are not.
    async with acurl_rs.CurlWrapper() as wrapper:
        first = wrapper.session(connection_scope=scope)
        await first.get(test_server.url("/set-cookie?user=alice"))
        first.close()
        for _ in range(3):
            later = wrapper.session(connection_scope=scope)
            r = await later.get(test_server.url("/cookies"))
            assert r.json() is None
            assert r.num_connects == (1 if scope == "session" else 0)
            assert later.cookies() == {}
            later.close()
