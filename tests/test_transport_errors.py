"""Transport failures become typed errors carrying the curl code; the session carries on."""

from __future__ import annotations

import socket

import pytest

import acurl_rs


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises(acurl_rs.ConnectError) as info:
            await s.get(f"http://127.0.0.1:{closed_port()}/")
        assert isinstance(info.value, ConnectionError)
        assert info.value.code == 7
        assert str(info.value).startswith("curl failed with code 7 ")
        assert info.value.category == "connect"
        assert (await s.get(test_server.url("/echo"))).status_code == 200
        s.close()


async def test_connect_timeout(fault_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises(acurl_rs.AcurlTimeoutError) as info:
            await s.get(fault_server.url("accept_nothing"), connect_timeout=0.3)
        assert info.value.code == 28
        s.close()


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("close_after_accept", acurl_rs.ProtocolError),
        ("close_mid_headers", acurl_rs.ProtocolError),
        ("short_body", acurl_rs.ProtocolError),
        ("broken_chunked", acurl_rs.ProtocolError),
        ("invalid_status_line", acurl_rs.ProtocolError),
    ],
)
async def test_broken_servers_give_protocol_errors(fault_server, test_server, mode, error):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises(error) as info:
            await s.get(fault_server.url(mode), timeout=5)
        assert info.value.code in (1, 8, 18, 52, 56) and info.value.curl_message
        assert (await s.get(test_server.url("/echo"))).status_code == 200
        s.close()
