"""TLS verification out of the box: every place ``acurl_rs.cabundle`` looks for CA certificates,
each proved by a real HTTPS request to nginx with the default ``verify=True``.

The nginx fixture's certificate is signed by a CA that trustme made for this test run, so it is
in no bundle of this machine. Each test also makes the same request with that CA missing from
the place under test (an unrelated CA there instead) and sees curl's error 60, so each pass is
owed to the lookup being tested and to nothing else on the machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import certifi
import pytest
import trustme

import acurl_rs
from acurl_rs import cabundle

REAL_CANDIDATES = cabundle.CA_FILE_CANDIDATES  # captured before any test patches it


async def fetch(url: str, http_version: str = "auto") -> acurl_rs.Response | int:
    """GET ``url`` on a new session with the default verify=True: the response, or the curl
    code of the TLSError. The session is made here, so it sees the environment as it is now."""
    async with acurl_rs.CurlWrapper() as wrapper:
        session = wrapper.session(http_version=http_version)
        try:
            return await session.get(url)
        except acurl_rs.TLSError as exc:
            assert exc.code is not None
            return exc.code
        finally:
            session.close()


async def assert_verified(url: str) -> None:
    """HTTP/1.1 and HTTP/2 over TLS both pass verification."""
    for version, expected in (("1.1", "1.1"), ("2", "2")):
        response = await fetch(url, version)
        assert not isinstance(response, int), f"TLS failed with curl code {response}"
        assert response.status_code == 200
        assert response.http_version == expected
        assert response.text == "hello\n"


@pytest.fixture
def other_ca_pem(tmp_path: Path) -> str:
    """A CA that did not sign nginx's certificate."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def elsewhere_untrusted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, other_ca_pem: str) -> None:
    """The distribution bundle and certifi both hold only the unrelated CA (the conftest
    fixture has already removed SSL_CERT_FILE and SSL_CERT_DIR)."""
    monkeypatch.setattr(
        cabundle, "CA_FILE_CANDIDATES", (str(tmp_path / "absent.pem"), other_ca_pem)
    )
    monkeypatch.setattr(certifi, "where", lambda: other_ca_pem)


def rehash(directory: Path) -> None:
    """Give the certificates in ``directory`` the <subject-hash>.0 names OpenSSL looks up."""
    openssl = shutil.which("openssl")
    c_rehash = shutil.which("c_rehash")
    if openssl:
        cmd = [openssl, "rehash", str(directory)]
    elif c_rehash:
        cmd = [c_rehash, str(directory)]
    else:
        pytest.fail("SSL_CERT_DIR test needs `openssl rehash` or c_rehash (Debian: openssl)")
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def test_the_usual_distribution_locations_are_candidates() -> None:
    assert "/etc/ssl/certs/ca-certificates.crt" in REAL_CANDIDATES  # Debian, Ubuntu
    assert "/etc/pki/tls/certs/ca-bundle.crt" in REAL_CANDIDATES  # RHEL, Fedora
    assert "/etc/ssl/cert.pem" in REAL_CANDIDATES  # Alpine


@pytest.mark.usefixtures("elsewhere_untrusted")
async def test_ssl_cert_file(nginx, monkeypatch):
    assert await fetch(nginx.https_url + "/") == 60

    monkeypatch.setenv("SSL_CERT_FILE", nginx.ca_path)
    assert cabundle.find_ca_bundle() == (nginx.ca_path, None)
    await assert_verified(nginx.https_url + "/")


@pytest.mark.usefixtures("elsewhere_untrusted")
async def test_ssl_cert_dir_with_hashed_names(nginx, monkeypatch, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(nginx.ca_path, certs / "test-ca.pem")
    monkeypatch.setenv("SSL_CERT_DIR", str(certs))
    assert cabundle.find_ca_bundle() == (None, str(certs))
    # The CA is in the directory, but OpenSSL finds a CA directory's entries by subject hash only.
    assert await fetch(nginx.https_url + "/") == 60

    rehash(certs)
    assert [p.name for p in certs.iterdir() if re.fullmatch(r"[0-9a-f]{8}\.0", p.name)]
    await assert_verified(nginx.https_url + "/")


@pytest.mark.usefixtures("elsewhere_untrusted")
@pytest.mark.parametrize("index", range(len(REAL_CANDIDATES)), ids=list(REAL_CANDIDATES))
async def test_distribution_bundle_location(nginx, monkeypatch, tmp_path, other_ca_pem, index):
    # The real candidate list, re-rooted under tmp_path: the tested location holds the test CA,
    # the ones before it are absent, the ones after it hold the unrelated CA.
    root = tmp_path / "root"
    candidates = tuple(str(root) + path for path in REAL_CANDIDATES)
    for later in candidates[index + 1 :]:
        Path(later).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(other_ca_pem, later)
    tested = Path(candidates[index])
    tested.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(cabundle, "CA_FILE_CANDIDATES", candidates)

    # Without the tested file, the next location (or certifi) is used: the unrelated CA.
    assert await fetch(nginx.https_url + "/") == 60

    shutil.copy(nginx.ca_path, tested)
    assert cabundle.find_ca_bundle() == (str(tested), None)
    await assert_verified(nginx.https_url + "/")


@pytest.mark.usefixtures("elsewhere_untrusted")
async def test_certifi_fallback(nginx, monkeypatch, tmp_path):
    monkeypatch.setattr(cabundle, "CA_FILE_CANDIDATES", (str(tmp_path / "absent.pem"),))
    # certifi's bundle is used when no distribution bundle exists: still the unrelated CA here.
    assert await fetch(nginx.https_url + "/") == 60

    monkeypatch.setattr(certifi, "where", lambda: nginx.ca_path)
    assert cabundle.find_ca_bundle() == (nginx.ca_path, None)
    await assert_verified(nginx.https_url + "/")
