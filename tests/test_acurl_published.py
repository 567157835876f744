"""acurl 1.2.1's own test suite, as published in its PyPI sdist, run against acurl_rs.

That suite is the contract of the drop-in, so it is run, never copied: the sdist is fetched
with ``pip download --no-binary :all: --no-deps acurl==1.2.1`` (once; the tarball is kept in
pytest's cache directory, .pytest_cache/, which git ignores, and checked against its SHA-256),
unpacked into a temporary directory, and its ``tests/`` run by pytest in a subprocess. No file
of acurl's is changed or added to: tests/acurl_harness/ (on the subprocess's PYTHONPATH) holds
a plugin, loaded with ``-p`` before collection, that puts ``sys.modules["acurl"] = acurl_rs``
and supplies the ``acurl_session`` fixture, and ``helpers.py`` with ``create_request``; the
sdist ships neither acurl's conftest.py nor its helpers.py. ``httpbin`` and ``httpserver``
come from pytest-httpbin and pytest-httpserver (the ``test`` extra), serving on 127.0.0.1.

Network: the subprocess runs in its own network namespace (``unshare -n``, only ``lo`` up,
checked by the plugin), so nothing it does can leave the machine, a DNS query included. Only
tests that reach outside the machine are skipped (``OUTSIDE``, with their reasons). Where no
namespace can be made, the test needing a resolver is skipped too (``NEEDS_RESOLVER``), and
http(s)_proxy point at a closed loopback port (with no_proxy for loopback), so a request for
any other host fails locally instead of looking the name up. The download of the sdist is the
one contact with the outside, before any test runs, and only when the cache is empty
(``ACURL_SDIST=/path/to/acurl-1.2.1.tar.gz`` uses a local copy instead).

The outcome is read from the junit XML: every test not skipped must pass, the number that ran
must be the number expected, and the skips must be exactly acurl's own and ours.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import acurl_rs

ACURL_VERSION = "1.2.1"
SDIST_NAME = f"acurl-{ACURL_VERSION}.tar.gz"
SDIST_SHA256 = "d2cbc33ce0a18ca57f22c8d3e06de7b233b49a21e3d7dde6def323eff9d3f444"
HARNESS = Path(__file__).parent / "acurl_harness"

# Every test in the sdist's tests/ (8 files); the run must collect exactly this many.
EXPECTED_TOTAL = 50
# Skipped by acurl itself (unconditional skip markers in its files): not run by acurl either.
ACURL_OWN_SKIPS = {
    "tests/test_cookie.py::test_cookie_zero_expiry": "unconditional skip",
    "tests/test_to_curl.py::test_to_curl_cookies_wrong_domain": "unimplemented",
}
# Skipped here because they reach outside the machine.
OUTSIDE = {
    "tests/test_request.py::test_request_cookies_from_previous_excludes_other_domains": (
        "reaches outside the machine: GET https://httpbin.org/cookies/set (a public host)"
    ),
}
# Skipped only without a network namespace: it looks up a name no local server answers for.
NEEDS_RESOLVER = {
    "tests/test_acurl.py::test_non_zero_exit_code_raises": (
        "reaches outside the machine without a network namespace: looks up "
        "unresolvable_hostname.doesnotexist through the system's DNS resolver"
    ),
}
_PROXY_NAMES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
_PROXY_VARIABLES = {v for name in _PROXY_NAMES for v in (name, name.upper())}
# Exactly these plugins (autoloading is off): acurl's fixtures' providers, then the alias.
PLUGINS = (
    "pytest_asyncio.plugin",
    "pytest_httpbin.plugin",
    "pytest_httpserver.pytest_plugin",
    "acurl_alias",
    "no:cacheprovider",  # nothing written beside acurl's files
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fetch_sdist(cache_dir: Path) -> Path:
    """The sdist, from ACURL_SDIST, the cache, or PyPI (then cached), its hash checked."""
    local = os.environ.get("ACURL_SDIST")
    if local and not Path(local).is_file():
        pytest.fail(f"ACURL_SDIST={local!r} is not a file")
    cached = Path(local) if local else cache_dir / SDIST_NAME
    if not cached.is_file():
        with tempfile.TemporaryDirectory(dir=cache_dir) as download:
            command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:"]
            command += ["--no-deps", f"acurl=={ACURL_VERSION}", "-d", download]
            proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
            fetched = Path(download) / SDIST_NAME
            if proc.returncode != 0 or not fetched.is_file():
                pytest.fail(
                    f"pip download of acurl {ACURL_VERSION} failed (offline? set ACURL_SDIST "
                    f"to a copy of {SDIST_NAME}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                )
            os.replace(fetched, cached)  # same directory tree: an atomic rename
    digest = _sha256(cached)
    assert digest == SDIST_SHA256, f"{cached} is not acurl {ACURL_VERSION}'s sdist: {digest}"
    return cached


def _unpack_tests(sdist: Path, into: Path) -> Path:
    """acurl's tests/ and pyproject.toml (its pytest settings), nothing else, as published."""
    prefix = f"acurl-{ACURL_VERSION}/"
    with tarfile.open(sdist) as tar:
        wanted = [
            m
            for m in tar.getmembers()
            if m.name == prefix + "pyproject.toml" or m.name.startswith(prefix + "tests/")
        ]
        for member in wanted:
            if not (member.isfile() or member.isdir()) or ".." in Path(member.name).parts:
                raise AssertionError(f"unexpected member in the sdist: {member.name}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, members=wanted, filter="data")
        else:  # Python before 3.10.12 / 3.11.4: the members were checked above
            tar.extractall(into, members=wanted)
    root = into / prefix
    assert (root / "tests" / "test_acurl.py").is_file()
    return root


def _network_namespace() -> list[str] | None:
    """A command prefix running its argument in a new network namespace with lo up, or None."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None:
        return None
    for flags in ("-n", "-rn"):  # as root; else as root of a new user namespace
        probe = [unshare, flags, "sh", "-c", f"{ip} link set lo up"]
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return [unshare, flags, "sh", "-c", f'{ip} link set lo up && exec "$0" "$@"']
    return None


def _outcomes(junit: Path) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """nodeid -> (passed | failed | skipped, message), and the suite's recorded properties."""
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    results: dict[str, tuple[str, str]] = {}
    for case in suite.iter("testcase"):
        module, name = case.get("classname", ""), case.get("name", "")
        nodeid = module.replace(".", "/") + ".py::" + name
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", child.get("message", "")
            elif child.tag == "skipped" and outcome != "failed":
                outcome, message = "skipped", child.get("message", "")
        assert nodeid not in results or outcome == "failed", f"{nodeid} reported twice"
        results[nodeid] = (outcome, message)
    properties = {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}
    return results, properties


@pytest.fixture(scope="module")
def published_run(request, tmp_path_factory) -> dict:
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        cache_dir = Path(cache.mkdir(f"acurl-{ACURL_VERSION}-sdist"))
    else:  # -p no:cacheprovider: download for this run only
        cache_dir = tmp_path_factory.mktemp("acurl-sdist")
    sdist = _fetch_sdist(cache_dir)
    work = tmp_path_factory.mktemp("acurl-published")
    root = _unpack_tests(sdist, work)
    junit = work / "junit.xml"

    netns = _network_namespace()
    skips = dict(OUTSIDE) if netns else {**OUTSIDE, **NEEDS_RESOLVER}
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARIABLES}
    env.pop("PYTEST_ADDOPTS", None)
    env.update(
        # The harness, then the directory this acurl_rs came from: the same one runs there.
        PYTHONPATH=os.pathsep.join([str(HARNESS), str(Path(acurl_rs.__file__).parents[1])]),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",  # exactly the plugins named below
        PYTEST_HTTPSERVER_HOST="127.0.0.1",  # its default is "localhost"
        ACURL_HARNESS_SKIPS=json.dumps(skips),
        ACURL_HARNESS_NETNS="1" if netns else "0",
    )
    # Without a namespace, the proxy is a bound but never listening loopback port: a request
    # for any host but loopback is refused right there, before any name is looked up.
    guard = socket.socket()
    guard.bind(("127.0.0.1", 0))
    if not netns:
        for name in ("http_proxy", "https_proxy", "all_proxy"):
            env[name] = f"http://127.0.0.1:{guard.getsockname()[1]}"
        env["no_proxy"] = "127.0.0.1,localhost,::1"
    command = [sys.executable, "-m", "pytest"]
    for plugin in PLUGINS:
        command += ["-p", plugin]
    command += ["--rootdir", str(root), "-c", str(root / "pyproject.toml")]
    command += ["--junitxml", str(junit), "-q", "-rA", "tests"]
    with guard:
        proc = subprocess.run(
            (netns or []) + command, cwd=root, env=env, capture_output=True, text=True, timeout=900
        )
    output = proc.stdout + proc.stderr
    assert junit.is_file(), f"pytest wrote no report (exit {proc.returncode}):\n{output[-6000:]}"
    results, properties = _outcomes(junit)
    return {
        "returncode": proc.returncode,
        "output": output,
        "results": results,
        "properties": properties,
        "skips": skips,
        "netns": netns is not None,
    }


def test_acurl_imports_resolved_to_this_acurl_rs(published_run):
    props = published_run["properties"]
    assert props.get("acurl_module") == "acurl_rs", props
    assert Path(props["acurl_file"]).resolve() == Path(acurl_rs.__file__).resolve()


def test_every_published_test_passes_except_the_listed_skips(published_run):
    results = published_run["results"]
    output = published_run["output"]
    failed = {k: m for k, (o, m) in results.items() if o == "failed"}
    assert not failed, f"{json.dumps(failed, indent=1)}\n{output[-8000:]}"
    assert len(results) == EXPECTED_TOTAL, (sorted(results), output[-4000:])

    expected_skips = {**ACURL_OWN_SKIPS, **published_run["skips"]}
    skipped = {k: m for k, (o, m) in results.items() if o == "skipped"}
    assert set(skipped) == set(expected_skips), skipped
    for nodeid, reason in published_run["skips"].items():
        assert reason in skipped[nodeid], (nodeid, skipped[nodeid])
    passed = [k for k, (o, _) in results.items() if o == "passed"]
    assert len(passed) == EXPECTED_TOTAL - len(expected_skips)
    assert published_run["returncode"] == 0, output[-4000:]
    if published_run["netns"]:
        assert len(passed) == 47  # 50 - acurl's 2 - httpbin.org
        assert results["tests/test_acurl.py::test_non_zero_exit_code_raises"][0] == "passed"
