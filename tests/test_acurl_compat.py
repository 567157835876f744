"""acurl 1.2.1's API, used the way acurl code uses it: `import acurl_rs as acurl`.

Section 1 of ../shared/ACURL.md, name by name, against the local test server.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

import acurl_rs as acurl


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_public_name_of_acurl_is_there():
    for name in (
        "AcurlError",
        "RequestError",
        "CurlWrapper",
        "Session",
        "Request",
        "_Response",
        "Cookie",
        "_Cookie",
        "parse_cookie_string",
        "session_cookie_for_url",
        "CaseInsensitiveDict",
    ):
        assert hasattr(acurl, name), name


async def test_wrapper_with_the_loop_positionally_and_fix92_spellings(test_server):
    loop = asyncio.get_running_loop()
    wrapper = acurl.CurlWrapper(loop, 50)  # mite's fix-92 branch: max_connects positional
    session = wrapper.session("1.1")  # and http_version
    assert isinstance(session, acurl.Session)
    r = await session.get(test_server.url("/echo"))
    assert r.status_code == 200 and r.http_version == "1.1"
    with pytest.raises(ValueError, match="Invalid http_version: 4"):
        wrapper.session(http_version="4")
    session.close()
    wrapper.close()


async def test_response_attributes_as_acurl_had_them(test_server):
    async with acurl.CurlWrapper(asyncio.get_running_loop()) as wrapper:
        session = wrapper.session()
        r = await session.get(test_server.url("/repeat-header"))
        assert isinstance(r, acurl._Response)
        assert r.status_code == 200
        with pytest.warns(DeprecationWarning):
            assert r.response_code == 200
        assert r.url == test_server.url("/repeat-header")
        assert r.redirect_url is None
        assert isinstance(r.start_time, int)
        for timing in (
            "namelookup_time",
            "connect_time",
            "appconnect_time",
            "pretransfer_time",
            "starttransfer_time",
            "total_time",
            "upload_size",
            "download_size",
        ):
            assert isinstance(getattr(r, timing), float), timing
        assert r.primary_ip == "127.0.0.1"
        assert r.history == []
        assert isinstance(r.body, bytes)
        assert r.header.startswith("HTTP/1.1 200")
        assert isinstance(r.headers, acurl.CaseInsensitiveDict)
        assert isinstance(r.headers, dict)  # a dict subclass, as acurl's (its tests check it)
        assert r.headers["x-multi"] == "a, b" and r.headers["X-MULTI"] == "a, b"
        assert ("X-Multi", "a") in r.headers_tuple
        assert r.encoding
        assert r.text == r.body.decode(r.encoding)
        assert r.request.method == b"GET"
        assert r.cookies == {}
        session.close()


async def test_request_object_positional_and_to_curl():
    request = acurl.Request(
        b"POST", "http://127.0.0.1:1/x", (("X-A", "b"),), (("c", "d"),), ("u", "p"), b"data", None
    )
    assert request.method == b"POST" and request.url == "http://127.0.0.1:1/x"
    assert request.headers == {"X-A": "b"}
    command = request.to_curl()
    assert command.startswith("curl") and "X-A: b" in command and "http://127.0.0.1:1/x" in command


async def test_response_callback_both_spellings_and_per_hop(test_server):
    async with acurl.CurlWrapper(asyncio.get_running_loop()) as wrapper:
        session = wrapper.session()
        seen: list[int] = []
        session.set_response_callback(lambda r: seen.append(r.status_code))
        await session.get(test_server.url("/redirect/2"))
        assert seen == [302, 302, 200]
        session.response_callback = None
        await session.get(test_server.url("/echo"))
        assert seen == [302, 302, 200]
        session.close()


async def test_cookies_jar_api_and_cookie_helpers(test_server):
    async with acurl.CurlWrapper(asyncio.get_running_loop()) as wrapper:
        session = wrapper.session()
        await session.get(test_server.url("/set-cookie?a=1"))
        assert session.cookies() == {"a": "1"}
        lines = session.get_cookie_list()  # mite_browser's older acurl API
        cookie = acurl.parse_cookie_string(lines[0])
        assert isinstance(cookie, acurl._Cookie) and (cookie.name, cookie.value) == ("a", "1")
        assert not cookie.has_expired
        assert cookie.format().endswith(b"\ta\t1")  # bytes, as acurl returned it
        session.erase_all_cookies()
        session.add_cookie(cookie.format())  # and the bytes go back in
        assert session.cookies() == {"a": "1"}
        made = acurl.session_cookie_for_url(test_server.url("/"), "b", "2")
        assert made.domain == ".127.0.0.1" and made.path == "/"
        session.erase_session_cookies()
        assert session.cookies() == {}
        r = await session.get(
            test_server.url("/cookies"), cookies={"c": acurl.Cookie("127.0.0.1", "c", "3")}
        )
        assert r.json() == "c=3"
        session.erase_all_cookies()
        session.close()


async def test_mite_browser_request_and_default_headers(test_server):
    async with acurl.CurlWrapper(asyncio.get_running_loop()) as wrapper:
        session = wrapper.session()
        session.headers["X-Default"] = "yes"
        r = await session.request("PATCH", test_server.url("/echo"), data="x")
        got = {n.lower(): v for n, v in r.json()["headers"]}
        assert r.json()["method"] == "PATCH" and got["x-default"] == "yes"
        session.close()


async def test_errors_keep_acurls_messages(test_server):
    async with acurl.CurlWrapper(asyncio.get_running_loop()) as wrapper:
        session = wrapper.session()
        with pytest.raises(acurl.AcurlError, match=r"curl failed with code 7.*"):
            await session.get(f"http://127.0.0.1:{closed_port()}/")
        with pytest.raises(acurl.RequestError, match="Max Redirects"):
            await session.get(test_server.url("/redirect/6"))
        with pytest.raises(ValueError, match="url must be a string"):
            await session.get(1)
        with pytest.raises(ValueError, match="data must be str or bytes"):
            await session.post(test_server.url("/echo"), data=1)
        with pytest.raises(ValueError, match="use only one or none of data or json"):
            await session.post(test_server.url("/echo"), data="a", json={})
        with pytest.raises(ValueError, match="auth must be a 2-tuple of strings but it was"):
            await session.get(test_server.url("/echo"), auth="user")
        session.close()


async def test_a_url_without_scheme_is_http_as_curl_took_it_for_acurl(test_server):
    async with acurl.CurlWrapper(asyncio.get_running_loop()) as wrapper:
        session = wrapper.session()
        bare = test_server.url("/echo").removeprefix("http://")  # "127.0.0.1:port/echo"
        r = await session.get(bare)
        assert r.status_code == 200 and r.url == test_server.url("/echo")
        assert r.request.url == "http://" + bare
        # Only a missing scheme is filled in: a URL naming another scheme is still refused.
        for url in ("file:/etc/passwd", "ftp://127.0.0.1/x", "//127.0.0.1/x"):
            with pytest.raises(ValueError):
                await session.get(url)
        session.close()
