"""find_ca_bundle: environment first, then the distribution bundle, then certifi."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import acurl_rs_cabundle as cabundle
import pytest

DEFAULT_CANDIDATES = cabundle.CA_FILE_CANDIDATES  # captured before any test patches it


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    # By default no distribution bundle exists, whatever this machine has.
    monkeypatch.setattr(cabundle, "CA_FILE_CANDIDATES", (str(tmp_path / "absent.pem"),))


def pem(path: Path) -> str:
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def test_ssl_cert_file_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    own = pem(tmp_path / "own.pem")
    monkeypatch.setattr(cabundle, "CA_FILE_CANDIDATES", (pem(tmp_path / "system.pem"),))
    monkeypatch.setenv("SSL_CERT_FILE", own)
    assert cabundle.find_ca_bundle() == (own, None)


def test_ssl_cert_dir_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cabundle, "CA_FILE_CANDIDATES", (pem(tmp_path / "system.pem"),))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    assert cabundle.find_ca_bundle() == (None, str(tmp_path))


def test_both_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    own = pem(tmp_path / "own.pem")
    monkeypatch.setenv("SSL_CERT_FILE", own)
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    assert cabundle.find_ca_bundle() == (own, str(tmp_path))


def test_ssl_cert_dir_list_keeps_existing_entries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    value = os.pathsep.join([str(first), str(tmp_path / "gone"), str(second)])
    monkeypatch.setenv("SSL_CERT_DIR", value)
    assert cabundle.find_ca_bundle() == (None, os.pathsep.join([str(first), str(second)]))


@pytest.mark.parametrize("bad", ["missing.pem", "a_directory", ""])
def test_unusable_ssl_cert_file_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bad: str
) -> None:
    (tmp_path / "a_directory").mkdir()
    system = pem(tmp_path / "system.pem")
    monkeypatch.setattr(cabundle, "CA_FILE_CANDIDATES", (system,))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / bad) if bad else "")
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "missing_dir"))
    assert cabundle.find_ca_bundle() == (system, None)


def test_first_existing_distribution_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    second, third = pem(tmp_path / "second.pem"), pem(tmp_path / "third.pem")
    candidates = (str(tmp_path / "first-missing.pem"), second, third)
    monkeypatch.setattr(cabundle, "CA_FILE_CANDIDATES", candidates)
    assert cabundle.find_ca_bundle() == (second, None)


def test_default_candidates_are_absolute_system_paths() -> None:
    # Relative or build-tree paths would make verification depend on the working directory.
    assert DEFAULT_CANDIDATES[0] == "/etc/ssl/certs/ca-certificates.crt"
    assert all(p.startswith("/etc/") for p in DEFAULT_CANDIDATES)


def test_certifi_fallback() -> None:
    certifi = pytest.importorskip("certifi")
    cafile, capath = cabundle.find_ca_bundle()
    assert cafile == certifi.where()
    assert capath is None
    assert os.path.isfile(cafile)


def test_nothing_found_without_certifi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "certifi", None)  # makes `import certifi` fail
    assert cabundle.find_ca_bundle() == (None, None)


def test_environment_changes_are_seen_on_the_next_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "certifi", None)
    assert cabundle.find_ca_bundle() == (None, None)
    own = pem(tmp_path / "own.pem")
    monkeypatch.setenv("SSL_CERT_FILE", own)
    assert cabundle.find_ca_bundle() == (own, None)
    monkeypatch.delenv("SSL_CERT_FILE")
    assert cabundle.find_ca_bundle() == (None, None)
