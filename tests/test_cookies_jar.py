"""The cookie jar lives in the share handle: isolated per session, visible to acurl's API."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

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


def sent_cookies(response) -> list[str]:
    """The cookies the test server received, each "name=value" (sorted: curl's order is its own)."""
    header = response.json()
    return sorted(header.split("; ")) if header else []


async def test_per_request_cookies_are_stored_for_their_host_as_acurl_did(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        r = await s.get(
            test_server.url("/cookies"),
            cookies={"a": "1", "b": acurl_rs.Cookie("127.0.0.1", "b", "2")},
        )
        assert sent_cookies(r) == ["a=1", "b=2"]  # each once: from the jar, not also a header
        assert r.request.cookies == {"a": "1", "b": "2"}
        assert r.cookies == {"a": "1", "b": "2"}
        # Host-only (no leading dot, FALSE), path "/", not Secure on http, a session cookie.
        assert sorted(s.get_cookie_list()) == [
            "127.0.0.1\tFALSE\t/\tFALSE\t0\ta\t1",
            "127.0.0.1\tFALSE\t/\tFALSE\t0\tb\t2",
        ]
        again = await s.get(test_server.url("/cookies?later"))  # re-sent later, as in acurl
        assert sent_cookies(again) == ["a=1", "b=2"]
        assert again.request.cookies == {"a": "1", "b": "2"}
        other_host = test_server.url("/cookies").replace("127.0.0.1", "localhost")
        assert sent_cookies(await s.get(other_host)) == []  # only for the request's host
        s.erase_session_cookies()
        assert sent_cookies(await s.get(test_server.url("/cookies"))) == []
        s.close()


async def test_request_cookies_say_what_each_hop_sent(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        await s.get(test_server.url("/set-cookie?jar=1"))
        target = test_server.url("/set-cookie?late=2")
        r = await s.get(test_server.url(f"/redirect-to?url={quote(target)}"), cookies={"g": "3"})
        assert [h.status_code for h in r.history] == [302]
        assert r.history[0].request.cookies == {"jar": "1", "g": "3"}
        # The final hop's own Set-Cookie came back after it was sent: not among its cookies.
        assert r.request.cookies == {"jar": "1", "g": "3"}
        assert r.cookies == {"jar": "1", "g": "3", "late": "2"}
        after = await s.get(test_server.url("/cookies"))
        assert sent_cookies(after) == ["g=3", "jar=1", "late=2"]
        assert after.request.cookies == {"jar": "1", "g": "3", "late": "2"}
        command = after.request.to_curl()
        sent_in_curl_order = after.json().replace("; ", ";")
        assert f"--cookie '{sent_in_curl_order}'" in command
        s.add_cookie(acurl_rs.session_cookie_for_url(test_server.url("/"), "added", "4"))
        assert (await s.get(test_server.url("/cookies"))).request.cookies["added"] == "4"
        s.erase_all_cookies()
        assert (await s.get(test_server.url("/cookies"))).request.cookies == {}
        s.close()


async def test_concurrent_requests_of_a_session_see_the_same_jar(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        await s.get(test_server.url("/set-cookie?shared=1"))
        rs = await asyncio.gather(*(s.get(test_server.url("/cookies")) for _ in range(10)))
        for r in rs:
            assert sent_cookies(r) == ["shared=1"]
            assert r.request.cookies == {"shared": "1"}
        s.close()


async def test_per_request_cookies_over_https_are_secure(nginx):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=nginx.ca_path)
        r = await s.get(nginx.https_url + "/cookie", cookies={"tls": "1", "__Host-id": "7"})
        assert sorted(r.body.decode().split("; ")) == ["__Host-id=7", "tls=1"]
        for line in s.get_cookie_list():
            c = acurl_rs.parse_cookie_string(line)
            assert (c.domain, c.include_subdomains, c.path, c.is_secure, c.expiration) == (
                "127.0.0.1",
                False,
                "/",
                True,
                0,
            )
        s.close()


@pytest.mark.parametrize(
    ("cookies", "error"),
    [
        ([("ok", "1"), ("a", "1")], TypeError),  # not a mapping
        ({"a": 1}, TypeError),
        ({1: "a"}, TypeError),
        ({"": "1"}, ValueError),
        ({"a b": "1"}, ValueError),
        ({"a=b": "1"}, ValueError),
        ({"a": "1;b=2"}, ValueError),
        ({"a": "1\tb"}, ValueError),
        ({"a": "1\r\nX-Injected: 1"}, ValueError),
        ({"a": "\x01"}, ValueError),
        ({"a": "\ud800"}, ValueError),
        ({"__Secure-a": "1"}, ValueError),  # needs https (curl would drop it silently)
        ({"__Host-a": "1"}, ValueError),
        ({"a": acurl_rs.Cookie("example.com", "a", "1")}, ValueError),  # another domain
    ],
)
async def test_bad_request_cookies_are_refused_and_nothing_is_stored(test_server, cookies, error):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises(error):
            # A good cookie first: none is stored unless all are good.
            given = {"ok": "1", **cookies} if isinstance(cookies, dict) else cookies
            await s.get(test_server.url("/cookies"), cookies=given)
        assert s.get_cookie_list() == []
        s.close()


async def test_a_refused_request_stores_none_of_its_cookies(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises(ValueError):
            await s.get(test_server.url("/cookies"), cookies={"a": "1"}, headers={"X": "a\r\nb"})
        with pytest.raises(ValueError):
            await s.get(test_server.url("/cookies") + " x", cookies={"a": "1"})
        assert s.get_cookie_list() == []
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
