"""TLS failures with verification on: each is a TLSError with curl's code and text, and with
``verify=False`` the same server answers (a failed handshake excepted). The servers are small
Python ``ssl`` servers on a background loop; certificates are made here with ``cryptography``
(an expired one cannot come from trustme's defaults).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import time
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import acurl_rs
from servers.background import BackgroundLoop

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


@dataclass
class KeyCert:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca() -> KeyCert:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("acurl_rs test CA"))
        .issuer_name(_name("acurl_rs test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 10 * DAY)
        .not_valid_after(NOW + 10 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyCert(key, cert)


def make_leaf(
    ca: KeyCert,
    names: list[str],
    not_before: datetime.datetime = NOW - DAY,
    not_after: datetime.datetime = NOW + DAY,
) -> KeyCert:
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return KeyCert(key, cert)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.transport.abort()


async def _garbage_after_client_hello(reader, writer) -> None:
    await reader.read(1)  # the ClientHello has started to arrive
    writer.write(b"\x15\x03\x03\x00\x02this is not TLS at all\r\n" * 8)
    await writer.drain()
    writer.transport.abort()


async def _close_after_client_hello(reader, writer) -> None:
    await reader.read(1)
    writer.transport.abort()


class TLSServers:
    """One loopback listener per case on a shared background loop; URLs by case name."""

    def __init__(self, tmp_path) -> None:
        self.bg = BackgroundLoop("TLSServers")
        self.ports: dict[str, int] = {}
        self.servers: list[asyncio.AbstractServer] = []
        self.tmp_path = tmp_path
        self.ca = make_ca()
        self.ca_path = str(tmp_path / "ca.pem")
        (tmp_path / "ca.pem").write_bytes(self.ca.cert_pem())

    def context(self, leaf: KeyCert, name: str) -> ssl.SSLContext:
        (self.tmp_path / f"{name}.key").write_bytes(leaf.key_pem())
        (self.tmp_path / f"{name}.pem").write_bytes(leaf.cert_pem())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.tmp_path / f"{name}.pem", self.tmp_path / f"{name}.key")
        return ctx

    def listen(self, name: str, handler, ctx: ssl.SSLContext | None) -> None:
        server = self.bg.run(asyncio.start_server(handler, "127.0.0.1", 0, ssl=ctx))
        self.servers.append(server)
        self.ports[name] = server.sockets[0].getsockname()[1]

    def start(self) -> TLSServers:
        self.bg.start()
        # The good certificate names 127.0.0.1 only: "localhost" is then the wrong host name.
        self.listen("good", _answer, self.context(make_leaf(self.ca, ["127.0.0.1"]), "good"))
        expired = make_leaf(self.ca, ["127.0.0.1"], NOW - 30 * DAY, NOW - 2 * DAY)
        self.listen("expired", _answer, self.context(expired, "expired"))
        future = make_leaf(self.ca, ["127.0.0.1"], NOW + 2 * DAY, NOW + 30 * DAY)
        self.listen("not_yet_valid", _answer, self.context(future, "future"))
        self.listen("garbage", _garbage_after_client_hello, None)
        self.listen("close", _close_after_client_hello, None)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            for server in self.servers:
                server.close()

        if self.bg.running:
            self.bg.run(shutdown())
        self.bg.stop()

    def url(self, name: str, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.ports[name]}/"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    servers = TLSServers(tmp_path_factory.mktemp("tls")).start()
    try:
        yield servers
    finally:
        servers.stop()


async def test_the_good_server_verifies(tls):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=tls.ca_path)
        r = await s.get(tls.url("good"))
        assert r.status_code == 200 and r.body == b"ok\n"
        s.close()


@pytest.mark.parametrize(
    ("case", "host", "fragment"),
    [
        ("good", "localhost", "no alternative certificate subject name matches"),
        ("expired", "127.0.0.1", "certificate has expired"),
        ("not_yet_valid", "127.0.0.1", "certificate is not yet valid"),
    ],
    ids=["wrong-hostname", "expired", "not-yet-valid"],
)
async def test_bad_certificates_fail_with_verification_and_pass_without(tls, case, host, fragment):
    url = tls.url(case, host)
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=tls.ca_path)
        with pytest.raises(acurl_rs.TLSError) as info:
            await s.get(url)
        err = info.value
        assert err.code == 60 and err.category == "tls"
        assert str(err).startswith("curl failed with code 60 ")
        assert fragment in err.curl_message, err.curl_message
        assert (await s.get(url, verify=False)).body == b"ok\n"
        # The connection made without verification is not reused for a verified request,
        # and verify=False did not stick to the session.
        with pytest.raises(acurl_rs.TLSError):
            await s.get(url)
        assert (await s.get(tls.url("good"))).status_code == 200
        s.close()


async def test_verify_false_on_the_session_and_true_on_the_request(tls):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=False)
        assert (await s.get(tls.url("expired"))).status_code == 200
        with pytest.raises(acurl_rs.TLSError):
            await s.get(tls.url("expired"), verify=tls.ca_path)
        s.close()


@pytest.mark.parametrize("case", ["garbage", "close"])
@pytest.mark.parametrize("verify", [True, False], ids=["verify", "no-verify"])
async def test_handshake_failure_is_a_tls_error_even_without_verification(tls, case, verify):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=tls.ca_path if verify else False)
        started = time.monotonic()
        with pytest.raises(acurl_rs.TLSError) as info:
            await s.get(tls.url(case), timeout=10)
        assert time.monotonic() - started < 2
        assert info.value.code == 35, str(info.value)
        assert info.value.curl_message
        assert (await s.get(tls.url("good"))).status_code == 200
        s.close()


async def test_tls_failures_at_once_do_not_disturb_good_requests(tls):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(verify=tls.ca_path)
        cases = ["garbage", "close", "expired", "not_yet_valid"] * 3
        results = await asyncio.gather(
            *(s.get(tls.url(c)) for c in cases),
            *(s.get(tls.url("good")) for _ in range(10)),
            return_exceptions=True,
        )
        for case, result in zip(cases, results[: len(cases)], strict=True):
            assert isinstance(result, acurl_rs.TLSError), (case, result)
            assert result.code == (35 if case in ("garbage", "close") else 60)
        assert all(r.status_code == 200 for r in results[len(cases) :])
        assert wrapper._native.registrations() == ([], False)
        s.close()
