"""The release wheel, as a user gets it: built by ``make wheel``, installed alone into a fresh
virtual environment, and used over HTTP/1.1 and HTTP/2 with TLS against the loopback servers.

The wheel is built at most once per run: ``dist/acurl_rs-<version>-cp310-abi3-*.whl`` is reused
when it is newer than every source it is built from, else ``make wheel`` builds it (a cold
build takes minutes: docs/PACKAGING.md). Select these tests with ``-m wheel``.

What is proved (docs/PACKAGING.md has the outputs):

- the tag is abi3 for CPython >= 3.10 and manylinux2014, and the extension only needs
  glibc <= 2.17 symbols and libraries that manylinux2014 allows;
- ``ldd`` shows no libcurl, libssl, libcrypto, nghttp2 or zlib: all are linked statically;
- ``nm -D`` shows exactly one exported symbol, ``PyInit__acurl_rs``, and no curl, OpenSSL,
  nghttp2 or zlib symbol imported from elsewhere, so nothing can clash with CPython's ``ssl``;
- the wheel carries the stub, ``py.typed`` and the bundled libraries' licence texts, its
  metadata version is Cargo.toml's, and ``twine check --strict`` passes;
- in a fresh venv holding only the wheel, with LD_LIBRARY_PATH unset: requests work, and
  ``/proc/<pid>/maps`` shows no libcurl/libssl/libcrypto/nghttp2 of the system (CPython's ssl
  and hashlib kept out); once more in a private mount namespace where the system's libcurl,
  OpenSSL and nghttp2 libraries and the curl/OpenSSL development files are hidden (root only;
  skipped elsewhere);
- ``import ssl`` and acurl_rs in one process: CPython's ssl (the system OpenSSL) and acurl_rs
  (its own OpenSSL) both make HTTPS requests, even concurrently on one event loop.
"""

from __future__ import annotations

import email.parser
import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
# What `make wheel` promises: one abi3 wheel for CPython 3.10+, manylinux2014 (= glibc 2.17).
EXPECTED_TAGS = ["cp310-abi3-manylinux2014_x86_64", "cp310-abi3-manylinux_2_17_x86_64"]
WHEEL_TAGS = "cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64"  # as in the file name
MAX_GLIBC = (2, 17)
# The libraries PEP 599 (manylinux2014) lets an extension link dynamically, minus the X11/GL
# ones, plus the dynamic loader itself.
MANYLINUX2014_LIBS = {
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libm.so.6",
    "libdl.so.2",
    "librt.so.1",
    "libc.so.6",
    "libnsl.so.1",
    "libutil.so.1",
    "libpthread.so.0",
    "libresolv.so.2",
    "ld-linux-x86-64.so.2",
}
# A shared library of the system that acurl_rs must never load: curl, OpenSSL, nghttp2. (The
# system's zlib is no sign: CPython's own binascii and zlib modules link it. ldd and nm show
# that the extension does not.)
SYSTEM_LIB = re.compile(r"/lib(curl[^/]*|ssl\.so[^/]*|crypto\.so[^/]*|nghttp2\.so[^/]*)$")
BUNDLED_SYMBOL = re.compile(
    r"^(curl_|Curl_|SSL_|OPENSSL_|CRYPTO_|EVP_|X509_|BIO_|ERR_|nghttp2_|"
    r"inflate|deflate|zlibVersion|crc32|adler32)"
)
BUNDLED_LICENSES = {"curl.txt", "curl-ISC.txt", "nghttp2.txt", "openssl.txt", "zlib.txt"}


# -- the wheel -----------------------------------------------------------------------------


def cargo_version() -> str:
    """[package] version in Cargo.toml (its first top-level `version =`; no tomllib on 3.10)."""
    text = (ROOT / "Cargo.toml").read_text()
    match = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    assert match, "no [package] version in Cargo.toml"
    return match.group(1)


def newest_source_mtime() -> float:
    """The newest mtime among the files the wheel is built from."""
    files = [ROOT / name for name in ("Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md")]
    files += [*(ROOT / "LICENSES").glob("*"), ROOT / "LICENSE"]
    files += (p for p in (ROOT / "src").rglob("*") if p.is_file())
    files += (
        p
        for p in (ROOT / "python" / "acurl_rs").rglob("*")
        if p.is_file() and p.suffix != ".so" and "__pycache__" not in p.parts
    )
    return max(p.stat().st_mtime for p in files if p.exists())


def fresh_wheel() -> Path | None:
    """dist/'s wheel of this version and tag, if it is newer than every source."""
    path = DIST / f"acurl_rs-{cargo_version()}-{WHEEL_TAGS}.whl"
    if path.exists() and path.stat().st_mtime > newest_source_mtime():
        return path
    return None


@pytest.fixture(scope="session")
def wheel() -> Path:
    """dist/'s wheel for this version when it is newer than the sources, else `make wheel`."""
    found = fresh_wheel()
    if found is None:
        proc = subprocess.run(
            ["make", "wheel", f"VENV={sys.prefix}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if proc.returncode != 0:
            pytest.fail(f"make wheel failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        found = fresh_wheel()
        assert found is not None, "make wheel left no fresh wheel in dist/"
    return found


@pytest.fixture(scope="session")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A new venv (no pip, no setuptools) with only the wheel and its declared dependencies."""
    base = tmp_path_factory.mktemp("wheel-venv")
    path = base / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=300
    )
    python = path / "bin" / "python"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir"),
            *("--disable-pip-version-check", "--no-input", "--quiet", str(wheel)),
        ],
        check=True,
        timeout=600,
    )
    (extension,) = glob.glob(str(path / "lib" / "python*" / "site-packages" / "acurl_rs" / "*.so"))
    client = base / "client.py"
    client.write_text(CLIENT)
    home = base / "home"
    home.mkdir()
    return SimpleNamespace(path=path, python=python, extension=extension, client=client, home=home)


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found (Debian: binutils / libc-bin)")
    return found


def run_tool(*cmd: str) -> str:
    return subprocess.run(
        [tool(cmd[0]), *cmd[1:]], capture_output=True, text=True, check=True, timeout=60
    ).stdout


# -- the wheel file ------------------------------------------------------------------------


def test_wheel_tags_contents_and_metadata(wheel):
    version = cargo_version()
    assert wheel.name == f"acurl_rs-{version}-{WHEEL_TAGS}.whl"
    dist_info = f"acurl_rs-{version}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        wheel_meta = email.parser.Parser().parsestr(zf.read(f"{dist_info}/WHEEL").decode())
        meta = email.parser.Parser().parsestr(zf.read(f"{dist_info}/METADATA").decode())
        stub = zf.read("acurl_rs/_acurl_rs.pyi")
        licenses = {
            name: zf.read(f"{dist_info}/licenses/LICENSES/{name}")
            for name in BUNDLED_LICENSES
            if f"{dist_info}/licenses/LICENSES/{name}" in names
        }

    assert wheel_meta.get_all("Tag") == EXPECTED_TAGS
    assert wheel_meta["Root-Is-Purelib"] == "false"
    # One extension module, the typing files, no stray build products or tests.
    assert [n for n in names if n.endswith(".so")] == ["acurl_rs/_acurl_rs.abi3.so"]
    assert {"acurl_rs/__init__.py", "acurl_rs/_acurl_rs.pyi", "acurl_rs/py.typed"} <= names
    assert stub == (ROOT / "python" / "acurl_rs" / "_acurl_rs.pyi").read_bytes()
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "src/"))]
    # The licence texts of everything linked in, byte for byte as in LICENSES/.
    assert set(licenses) == BUNDLED_LICENSES
    assert f"{dist_info}/licenses/LICENSE" in names  # acurl_rs's own MIT licence
    for name, text in licenses.items():
        assert text == (ROOT / "LICENSES" / name).read_bytes(), name

    assert meta["Name"] == "acurl_rs"
    assert meta["Version"] == version  # Cargo.toml is the one place the version is written
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Summary"]
    assert meta["License-Expression"] == "MIT AND Apache-2.0 AND curl AND ISC AND Zlib"
    assert set(meta.get_all("License-File")) == {"LICENSE"} | {
        f"LICENSES/{n}" for n in BUNDLED_LICENSES
    }
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert not [c for c in meta.get_all("Classifier") if c.startswith("License ::")]  # PEP 639
    assert meta.get_all("Project-URL")


def test_twine_check_strict(wheel):
    proc = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "No module named twine" in proc.stderr:
        pytest.fail("twine is not installed here: `pip install twine` (make wheel installs it)")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout


# -- the extension module ------------------------------------------------------------------


def test_ldd_lists_no_curl_ssl_crypto_nghttp2_or_zlib(venv):
    out = run_tool("ldd", venv.extension)
    for line in out.splitlines():
        assert not re.search(r"lib(curl|ssl|crypto|nghttp2|z)\b", line), line
    needed = re.findall(
        r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", run_tool("readelf", "-d", venv.extension)
    )
    assert needed and set(needed) <= MANYLINUX2014_LIBS, needed


def test_exports_only_pyinit_and_imports_no_bundled_symbols(venv):
    exported = run_tool("nm", "-D", "--defined-only", venv.extension).split()
    assert [s for s in exported if not re.fullmatch(r"[0-9a-f]+|[A-Za-z]", s)] == [
        "PyInit__acurl_rs"
    ]
    undefined = [
        line.split()[-1]
        for line in run_tool("nm", "-D", "--undefined-only", venv.extension).splitlines()
    ]
    assert undefined and not [s for s in undefined if BUNDLED_SYMBOL.match(s)]


def test_glibc_symbol_versions_fit_manylinux2014(venv):
    versions = {
        tuple(int(x) for x in v.split("."))
        for v in re.findall(r"\bGLIBC_([0-9.]+)\b", run_tool("objdump", "-T", venv.extension))
    }
    assert versions and max(versions) <= MAX_GLIBC, sorted(versions)


# -- in use ----------------------------------------------------------------------------------

# Runs inside the fresh venv (python -I: no PYTHONPATH, no user site, not this checkout).
# argv[1] is a JSON config; prints one JSON object on stdout.
CLIENT = r"""
import json
import os
import shutil
import sys

cfg = json.loads(sys.argv[1])
if cfg["block_ssl"]:
    # CPython's ssl and hashlib load the system's libssl/libcrypto: keep them out, so that a
    # libssl/libcrypto mapping could only have come from acurl_rs.
    for name in ("ssl", "_ssl", "_hashlib"):
        sys.modules[name] = None

import asyncio
import base64
import hashlib
import sysconfig

out = {"phases": []}


def mapped_files():
    paths = set()
    with open(f"/proc/{os.getpid()}/maps") as fh:
        for line in fh:
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].startswith("/"):
                paths.add(fields[5].strip())
    return sorted(paths)


def summary(r):
    return {"status": r.status_code, "http_version": r.http_version, "text": r.text}


async def acurl_phase():
    import acurl_rs

    https, res = cfg["https"], {}
    async with acurl_rs.CurlWrapper() as wrapper:
        # verify=True (the default) finding the test CA through SSL_CERT_FILE.
        os.environ["SSL_CERT_FILE"] = cfg["ca"]
        # Session scope: each its own pool. In the shared (wrapper) pool curl would hand the
        # "2" session the HTTP/1.1 connection the "1.1" session opened ("2" allows 1.1).
        h1 = wrapper.session(http_version="1.1", connection_scope="session")
        h2 = wrapper.session(http_version="2", connection_scope="session")
        auto = wrapper.session(connection_scope="session")
        del os.environ["SSL_CERT_FILE"]
        res["h1"] = summary(await h1.get(https + "/conn"))
        res["h2"] = summary(await h2.get(https + "/conn"))
        many = await asyncio.gather(*(h2.get(https + "/conn") for _ in range(20)))
        res["h2_many"] = [summary(r) for r in many]
        big = await auto.get(https + "/big")
        res["big"] = {
            "status": big.status_code,
            "http_version": big.http_version,
            "sha256": hashlib.sha256(big.body).hexdigest(),
        }
        h2c = wrapper.session(http_version="2-prior-knowledge")
        res["h2c"] = summary(await h2c.get(cfg["h2c"] + "/conn"))
        plain = wrapper.session()
        payload = bytes(range(256)) * 64
        echo = (await plain.post(cfg["http"] + "/echo", data=payload)).json()
        res["plain"] = {
            "http_version": echo["http_version"],
            "body_ok": base64.b64decode(echo["body_b64"]) == payload,
        }
        explicit = wrapper.session(verify=cfg["ca"])
        res["explicit"] = summary(await explicit.get(https + "/"))
        for s in (h1, h2, auto, h2c, plain, explicit):
            s.close()
    # Without SSL_CERT_FILE the machine's bundle (or nothing) is used: no test CA in it. The CA
    # bundle is looked up once per wrapper, so this takes a new one.
    async with acurl_rs.CurlWrapper() as wrapper:
        strict = wrapper.session()
        try:
            await strict.get(https + "/")
            res["untrusted"] = None
        except acurl_rs.TLSError as exc:
            res["untrusted"] = exc.code
        strict.close()
    return res


def stdlib_phase():
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=cfg["ca"])
    with urllib.request.urlopen(cfg["https"] + "/conn", context=ctx, timeout=30) as r:
        return {"status": r.status, "text": r.read().decode(), "openssl": ssl.OPENSSL_VERSION}


async def asyncio_ssl_get():
    import ssl

    ctx = ssl.create_default_context(cafile=cfg["ca"])
    reader, writer = await asyncio.open_connection("127.0.0.1", cfg["https_port"], ssl=ctx)
    writer.write(b"GET /conn HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data.decode().split("\r\n", 1)[0]


async def mixed_phase():
    # Both TLS stacks busy on one event loop at the same time.
    results = await asyncio.gather(acurl_phase(), *(asyncio_ssl_get() for _ in range(5)))
    return {"acurl": results[0], "asyncio_ssl": results[1:]}


for phase in cfg["phases"]:
    if phase == "acurl":
        result = asyncio.run(acurl_phase())
    elif phase == "stdlib":
        result = stdlib_phase()
    else:
        result = asyncio.run(mixed_phase())
    out["phases"].append([phase, result])

import acurl_rs
import acurl_rs._acurl_rs

out["maps"] = mapped_files()  # before anything below could load more
out["acurl_file"] = acurl_rs._acurl_rs.__file__
out["build_info"] = acurl_rs.build_info()
out["version"] = acurl_rs.__version__
out["prefix"] = sys.prefix
out["site"] = sorted(os.listdir(sysconfig.get_paths()["platlib"]))
out["ssl_loaded"] = sys.modules.get("ssl") is not None
out["ld_library_path"] = os.environ.get("LD_LIBRARY_PATH")
out["curl_config"] = shutil.which("curl-config")
out["dlopen"] = {}
if cfg["dlopen"]:
    import ctypes

    for soname in cfg["dlopen"]:
        try:
            ctypes.CDLL(soname)
            out["dlopen"][soname] = None
        except OSError as exc:
            out["dlopen"][soname] = str(exc)
print(json.dumps(out))
"""


def client_config(nginx, test_server, *, phases, block_ssl, dlopen=()):
    return {
        "https": nginx.https_url,
        "https_port": nginx.https_port,
        "h2c": nginx.h2c_url,
        "http": test_server.base_url,
        "ca": nginx.ca_path,
        "phases": phases,
        "block_ssl": block_ssl,
        "dlopen": list(dlopen),
    }


def run_client(venv, config, wrapper=()):
    """Run CLIENT in the fresh venv with a clean environment: no LD_LIBRARY_PATH, LD_PRELOAD,
    PYTHONPATH, proxies or SSL_CERT_*; PATH is the venv and the system's bin directories."""
    env = {"PATH": f"{venv.path}/bin:/usr/bin:/bin", "HOME": str(venv.home), "LANG": "C.UTF-8"}
    cmd = [*wrapper, str(venv.python), "-I", "-B", str(venv.client), json.dumps(config)]
    proc = subprocess.run(cmd, env=env, cwd=venv.home, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"client failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_acurl(res, nginx):
    assert res["h1"]["status"] == 200 and res["h1"]["http_version"] == "1.1"
    assert res["h1"]["text"].endswith(" HTTP/1.1\n")  # nginx's $server_protocol
    assert res["h2"]["status"] == 200 and res["h2"]["http_version"] == "2"
    assert res["h2"]["text"].endswith(" HTTP/2.0\n")
    many = res["h2_many"]
    assert {(r["status"], r["http_version"]) for r in many} == {(200, "2")}
    # nginx's $connection: the 20 concurrent requests were multiplexed on the h2 connection.
    assert {r["text"].split()[0] for r in many} == {res["h2"]["text"].split()[0]}
    assert res["big"]["status"] == 200 and res["big"]["http_version"] == "2"  # ALPN chose h2
    assert res["big"]["sha256"] == hashlib.sha256(nginx.big_body).hexdigest()
    assert res["h2c"]["status"] == 200 and res["h2c"]["text"].endswith(" HTTP/2.0\n")
    assert res["plain"] == {"http_version": "HTTP/1.1", "body_ok": True}
    assert res["untrusted"] == 60  # verification is on, and the test CA is trusted nowhere else
    assert res["explicit"]["status"] == 200


def check_installed_alone(out, venv):
    assert out["prefix"] == str(venv.path)
    assert out["acurl_file"] == venv.extension
    assert out["ld_library_path"] is None
    assert out["version"] == cargo_version()
    info = out["build_info"]
    assert info["static"] is True and info["ssl"].startswith("OpenSSL/3.")
    assert "HTTP2" in info["features"] and info["nghttp2"]
    # Only the wheel (a venv without pip has nothing else) and its dependencies (none).
    assert {name for name in out["site"] if not name.startswith(("_", "."))} == {
        "acurl_rs",
        f"acurl_rs-{cargo_version()}.dist-info",
    }
    assert venv.extension in out["maps"]


def test_fresh_venv_requests_map_no_system_curl_or_tls(venv, nginx, test_server):
    config = client_config(nginx, test_server, phases=["acurl"], block_ssl=True)
    out = run_client(venv, config)
    check_installed_alone(out, venv)
    [(_phase, res)] = out["phases"]
    check_acurl(res, nginx)
    assert not out["ssl_loaded"]
    assert not [p for p in out["maps"] if SYSTEM_LIB.search(p)], out["maps"]


def _unshare_available() -> bool:
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        return False
    probe = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "true"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


HIDE_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib", "/usr/lib64", "/usr/local/lib")
# Not zlib: CPython's binascii (so base64) needs the system's, and acurl_rs's is proved static by
# ldd and nm above.
HIDE_LIB_GLOBS = ("libcurl*", "libssl.*", "libcrypto.*", "libnghttp2.*")
HIDE_PC = ("libcurl.pc", "libssl.pc", "libcrypto.pc", "openssl.pc", "libnghttp2.pc")
HIDE_PC_DIRS = (
    "/usr/lib/x86_64-linux-gnu/pkgconfig",
    "/usr/lib/pkgconfig",
    "/usr/share/pkgconfig",
    "/usr/local/lib/pkgconfig",
)
HIDE_INCLUDE_DIRS = (
    "/usr/include/curl",
    "/usr/include/x86_64-linux-gnu/curl",
    "/usr/include/openssl",
    "/usr/include/x86_64-linux-gnu/openssl",
    "/usr/include/nghttp2",
)


def system_files_to_hide() -> tuple[list[str], list[str], list[str]]:
    """(files, directories, sonames): the system's curl, OpenSSL and nghttp2 libraries
    and the curl/OpenSSL development files (curl-config, .pc files, headers)."""
    names = [p for d in HIDE_LIB_DIRS for g in HIDE_LIB_GLOBS for p in glob.glob(f"{d}/{g}")]
    names += [f"{d}/{pc}" for d in HIDE_PC_DIRS for pc in HIDE_PC]
    names += [f"{d}/curl-config" for d in ("/usr/bin", "/usr/local/bin", "/bin")]
    files = sorted({os.path.realpath(p) for p in names if os.path.isfile(p)})
    dirs = sorted({os.path.realpath(d) for d in HIDE_INCLUDE_DIRS if os.path.isdir(d)})
    sonames = sorted(
        {os.path.basename(p) for p in names if re.search(r"\.so\.\d+$", p) and os.path.exists(p)}
    )
    return files, dirs, sonames


@pytest.mark.skipif(not _unshare_available(), reason="needs root and unshare --mount")
def test_fresh_venv_requests_with_system_curl_and_tls_hidden(venv, nginx, test_server):
    files, dirs, sonames = system_files_to_hide()
    script = "set -e\n"
    script += "".join(f"mount -t tmpfs -o ro,size=4k tmpfs {shlex.quote(d)}\n" for d in dirs)
    script += "".join(f"mount --bind /dev/null {shlex.quote(f)}\n" for f in files)
    script += 'exec "$@"\n'
    wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    config = client_config(nginx, test_server, phases=["acurl"], block_ssl=False, dlopen=sonames)
    out = run_client(venv, config, wrapper)
    check_installed_alone(out, venv)
    [(_phase, res)] = out["phases"]
    check_acurl(res, nginx)
    # Not even CPython's ssl could load in there: asyncio went on without it.
    assert not out["ssl_loaded"]
    assert not [p for p in out["maps"] if SYSTEM_LIB.search(p)], out["maps"]
    assert out["curl_config"] is None
    # Each hidden system library really was out of reach for that process.
    assert set(out["dlopen"]) == set(sonames) and all(out["dlopen"].values()), out["dlopen"]


@pytest.mark.parametrize(
    "phases",
    [["stdlib", "acurl", "mixed", "stdlib"], ["acurl", "stdlib", "mixed", "acurl"]],
    ids=["ssl-first", "acurl-first"],
)
def test_coexists_with_cpython_ssl_in_one_process(venv, nginx, test_server, phases):
    out = run_client(venv, client_config(nginx, test_server, phases=phases, block_ssl=False))
    check_installed_alone(out, venv)
    assert out["ssl_loaded"]
    system_openssl = None
    for phase, res in out["phases"]:
        if phase == "acurl":
            check_acurl(res, nginx)
        elif phase == "stdlib":
            assert res["status"] == 200 and res["text"].endswith(" HTTP/1.1\n")
            system_openssl = res["openssl"]
        else:
            check_acurl(res["acurl"], nginx)
            assert res["asyncio_ssl"] == ["HTTP/1.1 200 OK"] * 5
    # Two different OpenSSLs in one process, each used by its own side.
    ours = out["build_info"]["ssl"].split("/")[1]
    assert system_openssl is not None and ours not in system_openssl
    mapped = [p for p in out["maps"] if SYSTEM_LIB.search(p)]
    assert any("libssl" in p for p in mapped)  # CPython's _ssl loaded the system's
    assert not [p for p in mapped if re.search(r"/lib(curl|nghttp2)", p)], mapped
