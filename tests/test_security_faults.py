"""Security hardening beyond test_security.py: scheme checks on every redirect hop, credentials
that stay with their origin, control characters refused everywhere before a connection is
made, request framing the caller cannot break, and ``max_body_size`` on HTTP/2 and huge
bodies. The two hosts are 127.0.0.1 and localhost (both loopback, no DNS)."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

import acurl_rs
from servers.app import TestServer


@pytest.fixture
async def session():
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        yield s
        s.close()


def echoed_headers(response) -> dict[str, str]:
    return {n.lower(): v for n, v in response.json()["headers"]}


# -- redirects: only http and https, checked before anything is sent --------------------------


@pytest.mark.parametrize("scheme", ["gopher", "dict", "ftp", "FTP", "file", "telnet", "ldap"])
async def test_redirect_to_another_scheme_is_refused_before_connecting(
    session, test_server, recorder, scheme
):
    recorder.clear()
    target = f"{scheme}://127.0.0.1:{recorder.port}/x"
    with pytest.raises(acurl_rs.UnsupportedProtocolError) as info:
        await session.get(test_server.url(f"/redirect-to?url={target}"))
    assert info.value.category == "unsupported_protocol"
    assert "only http and https" in str(info.value)
    await asyncio.sleep(0.05)
    assert recorder.connections == 0
    assert (await session.get(test_server.url("/echo"))).status_code == 200


# -- credentials stay with their origin ----------------------------------------------------


def _cross_origin(test_server: TestServer, target: str, status: int = 302) -> str:
    return test_server.url(f"/redirect-to?status={status}&url={target}")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_no_credential_follows_a_redirect_to_another_host(session, test_server, status):
    await session.get(test_server.url("/set-cookie?jar=for-127"))  # a jar cookie for 127.0.0.1
    other = test_server.url("/echo").replace("127.0.0.1", "localhost")
    r = await session.post(
        _cross_origin(test_server, other, status),
        data=b"body",
        headers={
            "Authorization": "Bearer secret",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "Cookie": "manual=1",
            "X-Harmless": "kept",
        },
        cookies={"given": "1"},
    )
    assert r.url.startswith("http://localhost:")
    headers = echoed_headers(r)
    assert headers["x-harmless"] == "kept"
    for name in ("authorization", "proxy-authorization", "cookie"):
        assert name not in headers, (name, headers[name])


async def test_session_default_credentials_do_not_follow_either(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(headers={"Authorization": "Bearer session", "X-Default": "1"})
        other = test_server.url("/echo").replace("127.0.0.1", "localhost")
        r = await s.get(_cross_origin(test_server, other), auth=("u", "p"))
        headers = echoed_headers(r)
        assert "authorization" not in headers and headers["x-default"] == "1"
        s.close()


async def test_another_port_is_another_origin(session, test_server):
    with TestServer() as other:
        r = await session.get(
            _cross_origin(test_server, other.url("/echo")),
            headers={"Authorization": "Bearer secret", "Cookie": "manual=1"},
            auth=("u", "p"),
        )
        headers = echoed_headers(r)
        assert "authorization" not in headers and "cookie" not in headers


async def test_request_cookies_are_per_host_like_every_jar_cookie(session, test_server):
    # `cookies=` go into the jar for the request's host, as in acurl. Cookies do not isolate
    # by port (RFC 6265 section 8.5): another port of the same host gets them, as it gets the
    # cookies that host set. Another host does not (the redirect tests above, to localhost).
    with TestServer() as other:
        r = await session.get(_cross_origin(test_server, other.url("/echo")), cookies={"c": "1"})
        assert r.url.startswith(other.url("/"))
        assert echoed_headers(r)["cookie"] == "c=1"


async def test_credentials_do_follow_a_same_origin_redirect(session, test_server):
    r = await session.get(
        _cross_origin(test_server, test_server.url("/echo")),
        headers={"Authorization": "Bearer secret"},
        cookies={"c": "1"},
        auth=None,
    )
    headers = echoed_headers(r)
    assert headers["authorization"] == "Bearer secret" and headers["cookie"] == "c=1"
    r = await session.get(_cross_origin(test_server, test_server.url("/echo")), auth=("u", "p"))
    assert echoed_headers(r)["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


# -- CR, LF and NUL refused everywhere, before a connection is made -------------------------

BAD = ["\r", "\n", "\x00", "\r\nX-Injected: 1"]


def _injection_cases():
    for i, bad in enumerate(BAD):
        for where, kwargs in [
            ("method", {"method": f"GE{bad}T"}),
            ("header-name", {"headers": {f"X-A{bad}": "v"}}),
            ("header-value", {"headers": {"X-A": f"v{bad}w"}}),
            ("header-pair-value", {"headers": [("X-A", f"{bad}v")]}),
            ("url-path", {"path": f"/echo{bad}x"}),
            ("url-query", {"path": f"/echo?a={bad}"}),
            ("url-fragment", {"path": f"/echo#{bad}"}),
            ("cookie-name", {"cookies": {f"a{bad}": "1"}}),
            ("cookie-value", {"cookies": {"a": f"1{bad}"}}),
            ("auth-user", {"auth": (f"u{bad}", "p")}),
            ("auth-password", {"auth": ("u", f"p{bad}")}),
        ]:
            yield pytest.param(kwargs, id=f"{where}-{i}")


@pytest.mark.parametrize("kwargs", list(_injection_cases()))
async def test_control_characters_are_refused_before_connecting(session, recorder, kwargs):
    recorder.clear()
    kwargs = dict(kwargs)
    method = kwargs.pop("method", "GET")
    url = recorder.url(kwargs.pop("path", "/echo"))
    with pytest.raises(ValueError):
        await session.request(method, url, **kwargs)
    await asyncio.sleep(0.02)
    assert recorder.connections == 0 and recorder.requests == []


@pytest.mark.parametrize("bad", BAD)
async def test_session_default_headers_with_control_characters_are_refused(recorder, bad):
    recorder.clear()
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(headers={"X-Default": f"v{bad}"})
        with pytest.raises(ValueError):
            await s.get(recorder.url("/"))
        s.close()
    assert recorder.connections == 0


async def test_params_with_control_characters_are_percent_encoded(session, recorder):
    recorder.clear()
    await session.get(recorder.url("/p"), params={"a\r\nb": "c\x00d", "e": "f g"})
    (raw,) = recorder.requests
    assert raw.startswith(b"GET /p?a%0D%0Ab=c%00d&e=f+g HTTP/1.1\r\n")


@pytest.mark.parametrize("name", ["Host:evil", "X-A:b"])
async def test_a_header_name_with_a_colon_is_refused(session, recorder, name):
    recorder.clear()
    with pytest.raises(ValueError):
        await session.get(recorder.url("/"), headers={name: "v"})
    assert recorder.requests == []


# -- framing the caller cannot break ---------------------------------------------------------


def _framing(raw: bytes) -> tuple[dict[bytes, list[bytes]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    fields: dict[bytes, list[bytes]] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    return fields, body


@pytest.mark.parametrize(
    "headers",
    [{"Content-Length": "1"}, {"Content-Length": "5"}, {"Transfer-Encoding": "gzip"}],
)
async def test_caller_framing_headers_cannot_contradict_the_body(session, recorder, headers):
    recorder.clear()
    try:
        await session.post(recorder.url("/"), data=b"xx", headers=headers, timeout=1)
    except ValueError:
        return  # refusing the header is fine
    except acurl_rs.AcurlError:
        pass
    await asyncio.sleep(0.3)
    fields, body = _framing(recorder.requests[0])
    assert not (b"transfer-encoding" in fields and b"content-length" in fields)
    if b"content-length" in fields:
        assert fields[b"content-length"] == [b"%d" % len(body)] and body == b"xx"


# -- max_body_size ----------------------------------------------------------------------------


async def test_max_body_size_caps_an_http2_response(nginx):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=nginx.ca_path, max_body_size=1000)
        with pytest.raises(acurl_rs.BodyTooLargeError) as info:
            await s.get(nginx.https_url + "/big")
        assert info.value.code == 63 and info.value.category == "body_too_large"
        assert "max_body_size" in info.value.curl_message
        r = await s.get(nginx.https_url + "/big", max_body_size=None)
        assert r.http_version == "2" and len(r.body) == len(nginx.big_body)
        s.close()


async def test_max_body_size_stops_a_huge_body_early(session, test_server):
    started = time.monotonic()
    with pytest.raises(acurl_rs.BodyTooLargeError):
        await session.get(test_server.url("/bytes?n=30000000"), max_body_size=10_000)
    assert time.monotonic() - started < 2
    r = await session.get(test_server.url("/bytes?n=10000"), max_body_size=10_000)
    assert len(r.body) == 10_000


async def test_max_body_size_applies_to_every_redirect_hop(session, test_server):
    target = test_server.url("/bytes?n=5000")
    with pytest.raises(acurl_rs.BodyTooLargeError):
        await session.get(_cross_origin(test_server, target), max_body_size=1000)
