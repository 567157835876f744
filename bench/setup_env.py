"""Installs what the benchmark needs, idempotently, and says what could not be installed.

- Debian packages (apt-get, as root): nginx, nghttp2-client (h2load), wrk, libcurl4-openssl-dev
  (acurl 1.2.1 is compiled against it).
- The project venv (the one running this harness): acurl_rs built (`make deps dev` if it is
  not), trustme (certificates), matplotlib (the chart) and uvloop.
- The peers' venv, bench/.venv-peers, from the same Python: acurl 1.2.1 (from its sdist),
  pycurl, pyreqwest, aiohttp, httpx[h2], curl_cffi and uvloop, each installed on its own so
  one failure leaves the others usable. acurl has to be kept apart from our package.
- For bench/mite_bench.py (`ensure_mite`), in both venvs: mite 2.11.0 (--no-deps) and what
  `mite scenario test` imports.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_VENV = BENCH / ".venv-peers"
PEERS_PY = PEERS_VENV / "bin" / "python"

APT = {  # package -> a file it provides
    "nginx": "/usr/sbin/nginx",
    "nghttp2-client": "/usr/bin/h2load",
    "wrk": "/usr/bin/wrk",
    "libcurl4-openssl-dev": "/usr/bin/curl-config",
}
# client -> (pip requirement(s), module to import); versions pinned for comparable reruns.
PEERS = {
    "acurl": (["--no-binary", "acurl", "acurl==1.2.1"], "acurl"),
    "pycurl": (["pycurl==7.49.0"], "pycurl"),
    "pyreqwest": (["pyreqwest==0.15.1"], "pyreqwest"),
    "aiohttp": (["aiohttp==3.14.5"], "aiohttp"),
    "httpx": (["httpx[http2]==0.28.1"], "httpx"),
    "curl_cffi": (["curl_cffi==0.17.0"], "curl_cffi"),
}
PEERS_BASE = ["uvloop==0.23.0"]
# `mite scenario test` (bench/mite_bench.py) in both venvs: mite without its many service
# dependencies, plus what that command imports (docs/MITE_NOTES.md; pyzmq because `scenario test`
# makes a ZMQ sender). The peers' venv gets the versions the project venv has, so both run the
# same mite stack.
MITE = "mite==2.11.0"
MITE_DEPS = ["msgpack", "docopt", "ujson", "uvloop", "flask", "packaging", "prettytable", "pyzmq"]
MITE_IMPORTS = "import mite.__main__, mite.zmq, mite.cli.test"


def log(msg: str) -> None:
    print(f"[setup] {msg}", flush=True)


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


def _tail(proc: subprocess.CompletedProcess[str]) -> str:
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return " | ".join(lines[-3:])[-400:]


def ensure_apt() -> dict[str, str]:
    """Installs missing Debian packages; returns {package: why it is missing}."""
    missing = [pkg for pkg, path in APT.items() if not os.path.exists(path)]
    if not missing:
        return {}
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return {pkg: "not installed and cannot apt-get (not root or no apt)" for pkg in missing}
    log(f"apt-get install {' '.join(missing)}")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    update = _run(["apt-get", "update", "-q"], env=env)
    if update.returncode:
        log(f"apt-get update failed: {_tail(update)}")
    failed = {}
    for pkg in missing:
        proc = _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", pkg], env=env)
        if proc.returncode or not os.path.exists(APT[pkg]):
            failed[pkg] = f"apt-get install failed: {_tail(proc)}"
    return failed


def _importable(python: Path | str, module: str) -> bool:
    return _run([str(python), "-c", f"import {module}"]).returncode == 0


SMOKE = "import acurl_rs; acurl_rs.CurlWrapper().session(verify=False).close()"


def ensure_project() -> dict[str, str]:
    """acurl_rs importable in this venv (built if need be), plus trustme and matplotlib.

    Returns problems: acurl_rs unusable, or built from older sources than the checkout's.
    """
    if not _importable(sys.executable, "acurl_rs._acurl_rs"):
        # `deps` installs the build's Debian packages (perl, gcc...) when missing; needs root.
        targets = ["deps", "dev"] if os.geteuid() == 0 else ["dev"]
        log(f"acurl_rs is not built: make {' '.join(targets)}")
        subprocess.run(["make", *targets], cwd=ROOT, check=True)
    extras = [
        pkg for pkg in ("trustme", "matplotlib", "uvloop") if not _importable(sys.executable, pkg)
    ]
    if extras:
        log(f"pip install {' '.join(extras)} (project venv)")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *extras], check=True)
    smoke = _run([sys.executable, "-c", SMOKE])
    if smoke.returncode:
        return {"acurl_rs": f"does not work as built (run `make dev`?): {_tail(smoke)}"}
    return {}


def snapshot_acurl_rs(dest: Path) -> dict[str, str]:
    """Copies the acurl_rs package as built now (Python files and extension) to `dest`.

    Every acurl_rs run then imports the copy (PYTHONPATH), so a rebuild in the working tree
    during a long run cannot mix builds. Returns the environment for those runs.
    """
    env = os.environ | {"PYTHONPATH": str(dest)}
    check = None
    for _attempt in range(6):  # a copy taken mid-rebuild fails the smoke test: take another
        shutil.rmtree(dest, ignore_errors=True)
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / "python" / "acurl_rs", dest / "acurl_rs", ignore=ignore)
        check = _run([sys.executable, "-c", f"{SMOKE}; print(acurl_rs.__file__)"], env=env)
        if check.returncode == 0 and check.stdout.strip().startswith(str(dest)):
            return {"PYTHONPATH": str(dest)}
        time.sleep(5)
    raise RuntimeError(f"the acurl_rs snapshot does not work: {_tail(check)}")


def extension_id(package_dir: Path) -> str:
    """The extension's size and a short hash, to tell builds apart in the results."""
    built = sorted(package_dir.glob("_acurl_rs*.so"))
    if not built:
        return "?"
    data = built[0].read_bytes()
    return f"{hashlib.sha256(data).hexdigest()[:12]} ({len(data):,} bytes)"


def build_notes() -> list[str]:
    """Says so when the extension is older than the Rust sources it is built from."""
    built = list((ROOT / "python" / "acurl_rs").glob("_acurl_rs*.so"))
    sources = [*(ROOT / "src").rglob("*.rs"), ROOT / "Cargo.toml", ROOT / "Cargo.lock"]
    if not built:
        return []
    newest = max((p for p in sources if p.exists()), key=lambda p: p.stat().st_mtime)
    if newest.stat().st_mtime > built[0].stat().st_mtime + 1:
        rel = newest.relative_to(ROOT)
        return [f"acurl_rs extension is older than {rel}: figures are for the last `make dev`"]
    return []


def ensure_peers(wanted: list[str]) -> dict[str, str]:
    """The peers' venv with every wanted peer it can get; returns {client: why not}."""
    if not PEERS_PY.exists():
        log(f"creating {PEERS_VENV.relative_to(ROOT)}")
        venv.EnvBuilder(with_pip=True).create(PEERS_VENV)
        # A venv made from a venv's Python points at the same base interpreter.
        _run([str(PEERS_PY), "-m", "pip", "install", "-q", "-U", "pip"])
    unavailable: dict[str, str] = {}
    if not _importable(PEERS_PY, "uvloop"):
        proc = _run([str(PEERS_PY), "-m", "pip", "install", "-q", *PEERS_BASE])
        if proc.returncode:
            log(f"uvloop failed in the peers venv: {_tail(proc)}")
    for name in wanted:
        reqs, module = PEERS[name]
        if _importable(PEERS_PY, module):
            continue
        log(f"pip install {' '.join(reqs)} (peers venv)")
        proc = _run([str(PEERS_PY), "-m", "pip", "install", "-q", *reqs])
        if proc.returncode or not _importable(PEERS_PY, module):
            unavailable[name] = f"pip install {reqs[-1]} failed: {_tail(proc)}"
            log(unavailable[name])
    return unavailable


def _version(python: Path | str, dist: str) -> str | None:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    proc = _run([str(python), "-c", code])
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_mite(python: Path | str, like: Path | str | None = None) -> str | None:
    """mite 2.11.0 (--no-deps) and what `mite scenario test` imports, in the venv of `python`,
    at the versions found in the venv of `like` when given; returns why not, or None."""
    if _version(python, "mite") != MITE.split("==")[1]:
        proc = _run([str(python), "-m", "pip", "install", "-q", "--no-deps", MITE])
        if proc.returncode:
            return f"pip install --no-deps {MITE} failed: {_tail(proc)}"
    if _run([str(python), "-c", MITE_IMPORTS]).returncode:
        reqs = []
        for dist in MITE_DEPS:
            pinned_to = _version(like, dist) if like is not None else None
            reqs.append(f"{dist}=={pinned_to}" if pinned_to else dist)
        log(f"pip install {' '.join(reqs)} ({Path(python).parent.parent.name})")
        proc = _run([str(python), "-m", "pip", "install", "-q", *reqs])
        if proc.returncode or _run([str(python), "-c", MITE_IMPORTS]).returncode:
            return f"mite's dependencies failed: {_tail(proc)}"
    return None


def ensure(peers: list[str], install: bool = True) -> tuple[dict[str, str], list[str]]:
    """Everything; returns (what is unavailable and why, notes about the build)."""
    problems: dict[str, str] = {}
    if install:
        problems |= ensure_apt()
        problems |= ensure_project()
        problems |= ensure_peers(peers)
    else:
        for package, path in APT.items():
            if not os.path.exists(path):
                problems[package] = "not installed (--no-install)"
        for name in peers:
            if not _importable(PEERS_PY, PEERS[name][1]):
                problems[name] = "not installed (--no-install)"
    return problems, build_notes()
