"""Requests and responses against the Python test server: methods, bodies, headers, redirects."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

import acurl_rs
from servers.app import NUL_BODY, pseudo_random_bytes


@pytest.fixture
async def session():
    wrapper = acurl_rs.CurlWrapper()
    s = wrapper.session()
    yield s
    s.close()
    wrapper.close()


def echoed(response):
    payload = response.json()
    payload["body"] = base64.b64decode(payload.pop("body_b64"))
    payload["headers"] = {n.lower(): v for n, v in payload["headers"]}
    return payload


async def test_get_returns_status_body_and_libcurl_facts(session, test_server):
    r = await session.get(test_server.url("/echo?x=1"))
    assert r.status_code == 200
    assert r.http_version == "1.1"
    assert r.url == test_server.url("/echo?x=1")
    assert r.primary_ip == "127.0.0.1" and r.local_ip == "127.0.0.1"
    assert r.num_connects == 1 and r.conn_id >= 0
    assert 0 < r.total_time < 5 and r.starttransfer_time <= r.total_time
    assert r.redirect_url is None
    assert r.headers["content-type"] == "application/json"
    assert echoed(r)["method"] == "GET"
    assert r.download_size == len(r.body)
    assert r.reason == "OK"
    assert isinstance(r.start_time, int) and r.start_time_us // 1_000_000 == r.start_time


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_methods_and_binary_bodies_round_trip(session, test_server, method):
    body = b"\x00\x01binary\x00\xff" * 100
    r = await session.request(method, test_server.url("/echo"), data=body)
    got = echoed(r)
    assert got["method"] == method
    assert got["body"] == body
    assert "expect" not in got["headers"]  # no 100-continue round trip


async def test_nul_bytes_in_response_body_survive(session, test_server):
    r = await session.get(test_server.url("/nul"))
    assert r.body == NUL_BODY
    r = await session.get(test_server.url("/bytes?n=100000&seed=7"))
    assert r.body == pseudo_random_bytes(100000, 7)


async def test_json_data_params_headers_auth(session, test_server):
    r = await session.post(
        test_server.url("/echo"),
        json={"a": [1, 2]},
        params={"q": "a b", "n": 3},
        headers={"X-Custom": "yes"},
        auth=("user", "pa:ss"),
    )
    got = echoed(r)
    assert json.loads(got["body"]) == {"a": [1, 2]}
    assert got["query"] in ("q=a+b&n=3", {"q": "a b", "n": "3"}) or "q=a+b" in str(got["query"])
    assert got["headers"]["content-type"] == "application/json"
    assert got["headers"]["x-custom"] == "yes"
    assert got["headers"]["authorization"] == "Basic " + base64.b64encode(b"user:pa:ss").decode()
    assert got["headers"]["user-agent"].startswith("acurl_rs/")


async def test_header_pairs_and_session_default_headers(test_server):
    wrapper = acurl_rs.CurlWrapper()
    s = wrapper.session(headers={"X-Default": "1", "X-Over": "session"})
    r = await s.get(test_server.url("/echo"), headers=[("X-Over", "request"), ("X-Two", "2")])
    got = echoed(r)["headers"]
    assert got["x-default"] == "1" and got["x-over"] == "request" and got["x-two"] == "2"
    wrapper.close()


async def test_head_returns_at_once_without_a_body(session, test_server):
    r = await session.head(test_server.url("/bytes?n=5000"))
    assert r.status_code == 200 and r.body == b""
    assert r.total_time < 1.0


async def test_304_and_300_without_location_are_returned(session, test_server):
    for code in (304, 300):
        r = await session.get(test_server.url(f"/status/{code}"))
        assert r.status_code == code
        assert r.redirect_url is None and r.history == []


async def test_repeated_and_latin1_headers(session, test_server):
    r = await session.get(test_server.url("/repeat-header"))
    assert r.headers["X-Multi"] == "a, b"
    assert [v for n, v in r.headers_tuple if n == "X-Multi"] == ["a", "b"]
    r = await session.get(test_server.url("/headers-latin1"))
    assert r.headers["x-latin1"] == "caf\xe9"


async def test_interim_100_block_is_dropped(session, test_server):
    r = await session.post(
        test_server.url("/continue"), data=b"x" * 10, headers={"Expect": "100-continue"}
    )
    assert r.status_code == 200
    assert r.header.startswith("HTTP/1.1 200")
    assert all(not v.startswith("100") for _, v in r.headers_tuple)


async def test_redirect_chain_history_and_callback(session, test_server):
    seen = []
    session.set_response_callback(lambda resp: seen.append(resp.status_code))
    r = await session.get(test_server.url("/redirect/3"))
    assert r.status_code == 200 and r.body == b"done"
    assert [h.status_code for h in r.history] == [302, 302, 302]
    assert seen == [302, 302, 302, 200]
    assert r.url.endswith("/redirect/0")


async def test_max_redirects_raises_request_error(session, test_server):
    await session.get(test_server.url("/redirect/5"), max_redirects=5)
    with pytest.raises(acurl_rs.RequestError, match="Max Redirects"):
        await session.get(test_server.url("/redirect/6"), max_redirects=5)


async def test_allow_redirects_false_returns_the_3xx(session, test_server):
    r = await session.get(test_server.url("/redirect/2"), allow_redirects=False)
    assert r.status_code == 302
    assert r.redirect_url == test_server.url("/redirect/1")


@pytest.mark.parametrize(
    ("status", "method"), [(301, "GET"), (302, "GET"), (303, "GET"), (307, "POST"), (308, "POST")]
)
async def test_redirect_method_rules(session, test_server, status, method):
    target = test_server.url("/echo")
    r = await session.post(
        test_server.url(f"/redirect-to?status={status}&url={target}"), data=b"payload"
    )
    got = echoed(r)
    assert got["method"] == method
    assert got["body"] == (b"payload" if method == "POST" else b"")


async def test_response_callback_exception_propagates(session, test_server):
    def boom(_):
        raise RuntimeError("from callback")

    session.response_callback = boom
    with pytest.raises(RuntimeError, match="from callback"):
        await session.get(test_server.url("/echo"))
    session.response_callback = None
    assert (await session.get(test_server.url("/echo"))).status_code == 200


async def test_text_encoding_and_json(session, test_server):
    r = await session.get(test_server.url("/echo"))
    assert r.encoding == "latin1" or r.encoding.lower() in ("utf-8", "utf8")
    assert json.loads(r.text) == r.json()


async def test_response_code_is_deprecated(session, test_server):
    r = await session.get(test_server.url("/status/201"))
    with pytest.warns(DeprecationWarning):
        assert r.response_code == 201


async def test_request_object_and_to_curl(session, test_server):
    r = await session.post(test_server.url("/echo"), data=b"x", headers={"X-A": "b"})
    assert r.request.method == b"POST"
    assert r.request.url == test_server.url("/echo")
    cmd = r.request.to_curl()
    assert cmd.startswith("curl") and "X-A: b" in cmd and test_server.url("/echo") in cmd


async def test_raise_for_status(session, test_server):
    (await session.get(test_server.url("/status/204"))).raise_for_status()
    response = await session.get(test_server.url("/status/404"))
    with pytest.raises(acurl_rs.HTTPStatusError) as info:
        response.raise_for_status()
    assert info.value.response is response and "404" in str(info.value)


async def test_a_cleartext_burst_is_not_serialised_on_one_connection(session, test_server):
    # PIPEWAIT only where HTTP/2 can be negotiated: five slow requests over http:// run at once.
    started = asyncio.get_running_loop().time()
    responses = await asyncio.gather(
        *(session.get(test_server.url("/slow?delay=0.5")) for _ in range(5))
    )
    assert asyncio.get_running_loop().time() - started < 0.9
    assert len({r.conn_id for r in responses}) == 5


async def test_json_refuses_nan(session, test_server):
    with pytest.raises(ValueError):
        await session.post(test_server.url("/echo"), json={"x": float("nan")})


async def test_gzip_and_deflate_are_asked_for_and_decoded(nginx_factory):
    # acurl set CURLOPT_ACCEPT_ENCODING "" (every coding its curl decodes): servers compress
    # for it, and the body arrives decoded. This curl has zlib (gzip, deflate), not brotli/zstd.
    server = nginx_factory(
        extra_http="gzip on; gzip_min_length 1; gzip_types text/plain;",
        extra_server="location = /big.txt { default_type text/plain; }",
    )
    text = "compress me " * 500
    (server.prefix / "html").mkdir(exist_ok=True)
    (server.prefix / "html" / "big.txt").write_text(text)
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=server.ca_path)
        echoed = await s.get(server.https_url + "/echo-headers")
        assert "accept-encoding=deflate, gzip\n" in echoed.text
        r = await s.get(server.https_url + "/big.txt")
        assert r.headers["content-encoding"] == "gzip"
        assert r.text == text
        assert r.download_size < len(text) / 10, "the wire carried the compressed body"
        s.close()


async def test_per_request_overrides_are_checked_once_and_bad_ones_still_refused(
    test_server, monkeypatch
):
    import acurl_rs._arguments as arguments

    lookups = []
    real = arguments.find_ca_bundle
    monkeypatch.setattr(arguments, "find_ca_bundle", lambda: lookups.append(1) or real())
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=False)
        for _ in range(5):
            r = await s.get(test_server.url("/echo"), timeout=5, verify=True)
            assert r.status_code == 200
        assert len(lookups) == 1, "the same overrides are checked (and the CA found) once"
        with pytest.raises(TypeError):
            await s.get(test_server.url("/echo"), timeout=True)  # not the entry of timeout=1
        await s.get(test_server.url("/echo"), timeout=1)
        with pytest.raises(TypeError):
            await s.get(test_server.url("/echo"), timeout=True)
        with pytest.raises(ValueError):
            await s.get(test_server.url("/echo"), timeout=-1)
        s.close()
