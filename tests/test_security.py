"""Secure by default, and bad input refused before anything is sent."""

from __future__ import annotations

import pytest

import acurl_rs


async def test_verify_is_on_by_default_and_a_ca_file_makes_it_pass(nginx):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises(acurl_rs.TLSError) as info:
            await s.get(nginx.https_url + "/")
        assert info.value.code == 60
        assert (await s.get(nginx.https_url + "/", verify=nginx.ca_path)).status_code == 200
        assert (await s.get(nginx.https_url + "/", verify=False)).status_code == 200
        s.close()


async def test_ca_from_ssl_cert_file(nginx, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", nginx.ca_path)
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        assert (await s.get(nginx.https_url + "/")).status_code == 200
        s.close()


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1/", "dict://127.0.0.1/", "ftp://127.0.0.1/"]
)
async def test_only_http_and_https(url):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises(ValueError, match="scheme"):
            await s.get(url)
        s.close()


async def test_redirect_to_file_is_refused(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises(acurl_rs.UnsupportedProtocolError):
            await s.get(test_server.url("/redirect-to?url=file:///etc/passwd"))
        s.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"X-A": "b\r\nX-Injected: 1"}},
        {"headers": {"X-A\n": "b"}},
        {"headers": {"X-A": "b\x00"}},
        {"headers": {"Bad Name": "b"}},
        {"cookies": {"a": "b\r\nX: y"}},
    ],
)
async def test_header_injection_is_refused_before_sending(test_server, kwargs):
    test_server.reset_counters()
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises(ValueError):
            await s.get(test_server.url("/echo"), **kwargs)
        s.close()
    assert test_server.requests_served == 0


async def test_bad_method_and_url_are_refused(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises(ValueError):
            await s.request("GET /x HTTP/1.1\r\n", test_server.url("/echo"))
        with pytest.raises(ValueError):
            await s.get(test_server.url("/echo") + "\r\nHost: evil")
        s.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": b"http://127.0.0.1/"}, "url must be a string"),
        ({"data": 12}, "data must be str or bytes"),
        ({"data": "a", "json": {}}, "use only one or none of data or json"),
        ({"auth": ("user",)}, "auth must be a 2-tuple of strings"),
        ({"headers": 5}, "headers must be"),
        ({"timeout": "1"}, "timeout must be"),
        ({"verify": 3}, "verify must be"),
    ],
)
async def test_wrong_types_are_clear_errors(kwargs, message):
    kwargs.setdefault("url", "http://127.0.0.1:9/")
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises((TypeError, ValueError), match=message):
            await s.get(**kwargs)
        s.close()


async def test_max_body_size_caps_a_response(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(max_body_size=1000)
        assert len((await s.get(test_server.url("/bytes?n=1000"))).body) == 1000
        with pytest.raises(acurl_rs.BodyTooLargeError):
            await s.get(test_server.url("/bytes?n=5000"))
        with pytest.raises(acurl_rs.BodyTooLargeError):
            await s.get(test_server.url("/bytes?n=5000&chunked=1"))
        assert (await s.get(test_server.url("/echo"), max_body_size=None)).status_code == 200
        s.close()


async def test_proxy_variables_are_honoured_and_read_once_per_wrapper(monkeypatch):
    # libcurl's own rule: http_proxy sends http:// requests through the proxy. Without any proxy
    # variable, sessions tell curl "no proxy" up front; the variables are read per wrapper.
    from servers.recorder import RecordingServer

    proxy = RecordingServer().start()
    try:
        target = "http://127.0.0.1:9/through-the-proxy"  # port 9: nothing listens there
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        async with acurl_rs.CurlWrapper() as wrapper:
            s = wrapper.session()
            r = await s.get(target)
            assert r.status_code == 200 and r.body == b"ok"
            assert proxy.requests[0].startswith(b"GET " + target.encode() + b" HTTP/1.1\r\n")
            s.close()
        monkeypatch.delenv("http_proxy")
        async with acurl_rs.CurlWrapper() as wrapper:  # a new wrapper reads the variables anew
            direct = wrapper.session()
            with pytest.raises(acurl_rs.ConnectError):
                await direct.get(target)
            direct.close()
        assert len(proxy.requests) == 1
    finally:
        proxy.stop()
