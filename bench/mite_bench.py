#!/usr/bin/env python3
"""acurl_rs under mite 2.11's own `mite scenario test` against acurl 1.2.1 (`make bench-mite`).

    .venv/bin/python bench/mite_bench.py            full run (5 rounds, about 12 minutes)
    .venv/bin/python bench/mite_bench.py --quick    2 rounds, shorter windows (about 2.5 minutes)
    bench/mite_bench.py --variants acurl,adapter,floor --modes unpaced --rounds 1 --no-install

The scenario (bench/mite_scenario.py): a journey is a new session and 5 sequential GETs over
HTTP/2 TLS to a local nginx (bench/local_servers.py, loopback only, pinned to CPU 0). Each run
is one `python -m mite scenario test` process pinned to CPU 1; it counts its `http_metrics`
messages and reads its own CPU time over a window that starts after a warm-up (a mite message
processor in the same process, so start-up is excluded). Variants, in every round and in a
rotating order:

    acurl        mite's mite_http over acurl 1.2.1 (bench/.venv-peers)
    dropin       mite's mite_http with sys.modules["acurl"] = acurl_rs
    adapter      acurl_rs.mite.mite_http, wrapper scope
    session_tls  acurl_rs.mite.mite_http, session scope, tls_sessions="wrapper"
    session      acurl_rs.mite.mite_http, session scope, per-user TLS sessions
    floor        no HTTP: the same journeys send the same http_metrics through ctx.send

Modes: paced (120 journeys/s = 600 requests/s: 60 concurrent journeys in mite's volume model,
each inside `ensure_fixed_separation(0.5)`) and unpaced (50 concurrent journeys, no pacing).

Writes bench/results/mite.md, bench/results/mite.json and docs/bench_mite.png.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import setup_env
from local_servers import BenchNginx, nginx_version, pinned
from report import Stat, git_commit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCENARIO = BENCH / "mite_scenario.py"

VARIANTS: dict[str, str] = {
    "acurl": "acurl 1.2.1, mite's mite_http",
    "dropin": 'acurl_rs as sys.modules["acurl"], mite\'s mite_http',
    "adapter": "acurl_rs.mite.mite_http, wrapper scope",
    "session_tls": 'acurl_rs.mite, session scope, tls_sessions="wrapper"',
    "session": "acurl_rs.mite, session scope, per-user TLS sessions",
    "floor": "no HTTP (mite's own cost)",
}
MODES: dict[str, dict[str, Any]] = {
    "paced": {
        "title": "paced: 120 journeys/s = 600 req/s (60 journeys, ensure_fixed_separation(0.5))",
        "volume": 60,
        "separation": 0.5,
    },
    "unpaced": {"title": "unpaced: 50 concurrent journeys, no pacing", "volume": 50},
}
REQUESTS_PER_JOURNEY = 5
MESSAGE_PROCESSORS = (
    "mite_scenario:BenchCounter,mite.logoutput:HttpStatsOutput,mite.logoutput:MsgOutput"
)


@dataclass(frozen=True)
class Profile:
    rounds: int
    warmup: float
    window: float


PROFILES = {"full": Profile(5, 2.0, 8.0), "quick": Profile(2, 1.0, 3.0)}


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------
# setup


def setup(install: bool, want_acurl: bool) -> dict[str, str]:
    """Everything the run needs; returns {what: why it is unavailable}."""
    problems: dict[str, str] = {}
    if install:
        problems |= {k: v for k, v in setup_env.ensure_apt().items() if k == "nginx"}
    if not os.path.exists(setup_env.APT["nginx"]):
        sys.exit("nginx is required (apt-get install nginx)")
    # The extension may be replaced for a moment by a rebuild: wait a little before deciding
    # that it is missing (ensure_project then builds it).
    for _attempt in range(12):
        if setup_env._importable(sys.executable, "acurl_rs._acurl_rs"):
            break
        time.sleep(5)
    if install:
        problems |= setup_env.ensure_project()
        if why := setup_env.ensure_mite(sys.executable):
            sys.exit(f"mite is required in the project venv: {why}")
    elif not setup_env._importable(sys.executable, "mite"):
        sys.exit("mite is not installed in the project venv (run without --no-install)")
    if want_acurl:
        if install:
            problems |= setup_env.ensure_peers(["acurl"])
            if "acurl" not in problems and (
                why := setup_env.ensure_mite(setup_env.PEERS_PY, like=sys.executable)
            ):
                problems["acurl"] = why
        elif not setup_env._importable(setup_env.PEERS_PY, "acurl"):
            problems["acurl"] = "not installed in bench/.venv-peers (--no-install)"
    return problems


PROBE = """
import inspect, json, acurl_rs, acurl_rs.mite
params = inspect.signature(acurl_rs.CurlWrapper.session).parameters
adapter = inspect.signature(acurl_rs.mite.mite_http).parameters
def default(p, name):
    return p[name].default if name in p else None
print(json.dumps({
    "version": acurl_rs.__version__ if hasattr(acurl_rs, "__version__") else "?",
    "session_scope_default": default(params, "connection_scope"),
    "tls_sessions": "tls_sessions" in params,
    "tls_sessions_default": default(params, "tls_sessions"),
    "adapter_tls_sessions": "tls_sessions" in adapter or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in adapter.values()),
}))
"""


def probe_acurl_rs(env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode:
        raise RuntimeError(f"acurl_rs probe failed: {proc.stderr.strip()[-400:]}")
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------------------------------
# one run


class MiteBench:
    def __init__(self, profile: Profile, workdir: Path, tls_sessions: bool) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        self.server_cpu, self.client_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
        if self.server_cpu is not None:
            os.sched_setaffinity(0, {self.server_cpu})  # keep the harness off the runner's CPU
        self.p = profile
        self.workdir = workdir
        self.nginx = BenchNginx(workdir / "nginx", self.server_cpu)
        self.scenario_dir = workdir / "scenario"
        self.scenario_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(SCENARIO, self.scenario_dir / SCENARIO.name)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if "proxy" not in k.lower() and k not in ("SSL_CERT_DIR", "PYTHONPATH")
        }
        self.acurl_rs_path = ""
        self.tls_sessions = tls_sessions
        self.records: list[dict[str, Any]] = []
        self.count = 0

    def run(self, variant: str, mode: str, rnd: int) -> dict[str, Any]:
        cfg = MODES[mode]
        self.count += 1
        tag = f"r{rnd}n{self.count}"
        out = self.workdir / f"{tag}.json"
        rundir = self.workdir / f"run-{tag}"  # mite writes collector_data/ and recorder_data/
        rundir.mkdir()
        python = str(setup_env.PEERS_PY) if variant == "acurl" else sys.executable
        path = [str(self.scenario_dir)]
        if variant != "acurl":
            path.insert(0, self.acurl_rs_path)
        env = self.env | {
            "PYTHONPATH": os.pathsep.join(path),
            "SSL_CERT_FILE": str(
                self.nginx.ca_path
            ),  # the drop-in verifies (cannot be told not to)
            "MITE_BENCH_VARIANT": variant,
            "MITE_BENCH_MODE": mode,
            "MITE_BENCH_URL": f"{self.nginx.https_url}/small",
            "MITE_BENCH_TAG": tag,
            "MITE_BENCH_VOLUME": str(cfg["volume"]),
            "MITE_BENCH_SEPARATION": str(cfg.get("separation", 0)),
            "MITE_BENCH_WARMUP": str(self.p.warmup),
            "MITE_BENCH_WINDOW": str(self.p.window),
            "MITE_BENCH_OUT": str(out),
            "MITE_BENCH_TLS_SESSIONS": "1" if self.tls_sessions else "0",
        }
        cmd = [python, "-m", "mite", "--spawn-rate=1000000", "scenario", "test"]
        cmd += [f"--message-processors={MESSAGE_PROCESSORS}", "mite_scenario:scenario"]
        head = {"variant": variant, "mode": mode, "round": rnd, "tag": tag}
        offset = self.nginx.log_offset()
        started = time.monotonic()
        try:
            proc = subprocess.run(
                cmd,
                cwd=rundir,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.p.warmup + self.p.window + 90,
                preexec_fn=pinned(self.client_cpu),
            )
            failed = None if proc.returncode == 0 else f"exit {proc.returncode}: {_tail(proc)}"
        except subprocess.TimeoutExpired:
            failed = "timed out"
        rec: dict[str, Any] = head | {"process_s": time.monotonic() - started}
        if out.exists():
            rec |= json.loads(out.read_text())
        elif not failed:
            failed = "no result file"
        if failed:
            rec["failed"] = failed
        rec |= self.from_nginx(offset, tag, rec)
        rec["ok"] = _ok(rec)
        shutil.rmtree(rundir, ignore_errors=True)
        self.records.append(rec)
        log(f"[{self.count:>3}] {_describe(rec)}")
        return rec

    def from_nginx(self, offset: int, tag: str, rec: dict[str, Any]) -> dict[str, Any]:
        """This run's requests as nginx saw them; new connections of the timed phase."""
        warm, timed = set(), {}
        phases: dict[str, int] = {}
        protocols: dict[str, int] = {}
        for fields in self.nginx.log_since(offset):
            if len(fields) != 4:
                continue
            conn, reused, proto, arg = fields
            run, _, phase = arg.rpartition(".")
            if run != tag:
                continue
            phases[phase] = phases.get(phase, 0) + 1
            protocols[proto] = protocols.get(proto, 0) + 1
            if phase == "w":
                warm.add(conn)
            elif phase == "t":
                timed.setdefault(conn, reused)
        if rec.get("variant") == "floor":
            return {"nginx_requests": sum(phases.values())}
        new = {c: r for c, r in timed.items() if c not in warm}
        journeys_t = phases.get("t", 0) / REQUESTS_PER_JOURNEY
        return {
            "nginx_requests": sum(phases.values()),
            "nginx_by_phase": phases,
            "protocols": protocols,
            "connections_timed": len(timed),
            "new_connections_timed": len(new),
            "conns_per_journey": len(new) / journeys_t if journeys_t else None,
            "resumed_share": sum(r == "r" for r in new.values()) / len(new) if new else None,
        }


def _tail(proc: subprocess.CompletedProcess[str]) -> str:
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return " | ".join(lines[-4:])[-500:]


def _ok(rec: dict[str, Any]) -> bool:
    """Counts agree with nginx, no errors, HTTP/2 only, and a measured window."""
    if rec.get("failed") or rec.get("errors") or rec.get("bad_status"):
        return False
    if not rec.get("cpu_us_per_req"):
        return False
    if rec["variant"] == "floor":
        return rec.get("nginx_requests") == 0
    if rec.get("nginx_requests") != rec.get("requests_total"):
        return False
    if (rec.get("nginx_by_phase") or {}).get("t") != (rec.get("by_phase") or {}).get("t"):
        return False
    return set(rec.get("protocols") or {}) == {"HTTP/2.0"}


def _describe(rec: dict[str, Any]) -> str:
    what = f"{rec['mode']:<8} {rec['variant']:<12}"
    if rec.get("failed"):
        return f"{what} FAILED {rec['failed'][:300]}"
    parts = []
    if rec.get("cpu_us_per_req"):
        parts.append(f"{rec['cpu_us_per_req']:.0f} µs/req")
        parts.append(f"{rec['rps']:,.0f} req/s")
    if rec.get("conns_per_journey") is not None:
        parts.append(f"{rec['conns_per_journey']:.2f} conn/journey")
    if rec.get("fds") is not None:
        parts.append(f"{rec['fds']} fds, RSS {rec['rss_kib'] / 1024:.0f} MiB")
    if rec.get("errors") or rec.get("bad_status"):
        parts.append(f"{rec.get('errors')} errors {rec.get('first_error', '')[:100]}")
    if not rec["ok"]:
        parts.append(
            f"NOT OK (client {rec.get('requests_total')} vs nginx {rec.get('nginx_requests')}"
            f", protocols {rec.get('protocols')})"
        )
    return f"{what} {', '.join(parts)}"


# ---------------------------------------------------------------------------------------------
# summary


METRICS = {
    "cpu_us_per_req": "CPU µs/request",
    "rps": "requests/s",
    "cpu_share": "CPU share of one core",
    "conns_per_journey": "TLS connections opened per journey",
    "resumed_share": "resumed share of new TLS connections",
    "fds": "open fds at the window's end",
    "rss_kib": "RSS KiB at the window's end",
}


def summarize(records: list[dict[str, Any]], variants: list[str], modes: list[str]) -> dict:
    out: dict[str, Any] = {}
    for mode in modes:
        runs = [r for r in records if r["mode"] == mode and r["ok"]]
        floor = {r["round"]: r["cpu_us_per_req"] for r in runs if r["variant"] == "floor"}
        table: dict[str, Any] = {}
        for variant in variants:
            mine = [r for r in runs if r["variant"] == variant]
            row: dict[str, Any] = {
                m: Stat(r[m] for r in mine if r.get(m) is not None) for m in METRICS
            }
            # Above the floor: per round, against that round's floor run (interleaved).
            row["above_floor_us"] = Stat(
                r["cpu_us_per_req"] - floor[r["round"]] for r in mine if r["round"] in floor
            )
            row["runs"] = len(mine)
            row["runs_total"] = sum(
                1 for r in records if r["mode"] == mode and r["variant"] == variant
            )
            table[variant] = row
        base = table.get("acurl")
        for variant, row in table.items():
            ratios = {}
            if base is not None and variant not in ("acurl", "floor"):
                for key, metric in (
                    ("cpu", "cpu_us_per_req"),
                    ("above_floor", "above_floor_us"),
                    ("rps", "rps"),
                    ("fds", "fds"),
                    ("rss", "rss_kib"),
                ):
                    if row[metric] and base[metric] and base[metric].median:
                        ratios[key] = row[metric].median / base[metric].median
            row["ratios_vs_acurl"] = ratios
        out[mode] = table
    return out


def _jsonable(summary: dict) -> dict:
    return {
        mode: {
            v: {k: (x.as_dict() if isinstance(x, Stat) else x) for k, x in row.items()}
            for v, row in table.items()
        }
        for mode, table in summary.items()
    }


def _ratio(ratios: dict[str, float], key: str) -> str:
    return f"{ratios[key]:.2f}" if key in ratios else "-"


def markdown(summary: dict, meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    lines = [
        "# acurl_rs under mite 2.11 (`mite scenario test`)",
        "",
        f"Generated by `bench/mite_bench.py` ({meta['argv']}), {meta['date']}, commit "
        f"{meta['commit']}; {meta['profile']} profile: {meta['rounds']} interleaved rounds, "
        f"{meta['warmup']:g} s warm-up then a {meta['window']:g} s measured window per run.",
        f"Machine: {meta['cpu_model']}, {meta['cpus']} CPUs, {meta['kernel']}, Python "
        f"{meta['python']}, nginx {meta['nginx']}; load average before {meta['loadavg_before']},"
        f" after {meta['loadavg_after']}.",
        f"Versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}.",
        "",
    ]
    if meta.get("note"):
        lines += [f"**{meta['note']}**", ""]
    lines += [
        "A journey is a new session and 5 sequential GETs (100-byte body) over HTTP/2 TLS to nginx "
        "on loopback (pinned to CPU 0); each run is one `python -m mite scenario test` process "
        "pinned to CPU 1. CPU is the runner process's user+sys (getrusage) over the measured "
        "window, read by a mite message processor in that process, divided by the `http_metrics` "
        "messages of the window; start-up and warm-up are outside it. Figures: median over "
        'rounds (min-max). "Above floor" is a variant\'s CPU/request minus that of the no-HTTP '
        "floor run of the same round. Connections per journey: connections that nginx's access "
        "log first sees in the timed phase, per journey of that phase. fds and RSS: the runner "
        "at the window's end.",
        "",
        "| variant | what |",
        "|---|---|",
    ]
    lines += [f"| {v} | {VARIANTS[v]} |" for v in meta["variants"]]
    lines.append("")
    for mode, table in summary.items():
        lines += [
            f"## {MODES[mode]['title']}",
            "",
            "| variant | CPU µs/req | above floor µs | req/s | CPU share | TLS conns/journey "
            "| resumed | fds | RSS MiB | ratio CPU | ratio above floor | ratio req/s | runs |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for variant, row in table.items():
            r = row["ratios_vs_acurl"]
            floor = variant == "floor"
            lines.append(
                f"| {variant} | {row['cpu_us_per_req'].fmt(',.0f')} "
                f"| {'-' if floor else row['above_floor_us'].fmt(',.0f')} "
                f"| {row['rps'].fmt(',.0f')} | {row['cpu_share'].fmt('.2f')} "
                f"| {'-' if floor else row['conns_per_journey'].fmt('.2f')} "
                f"| {'-' if floor else row['resumed_share'].fmt('.2f')} "
                f"| {row['fds'].fmt('.0f')} | {row['rss_kib'].fmt('.1f', 1024)} "
                f"| {_ratio(r, 'cpu')} | {_ratio(r, 'above_floor')} | {_ratio(r, 'rps')} "
                f"| {row['runs']}/{row['runs_total']} |"
            )
        lines.append("")
    lines += [
        "Ratios are acurl_rs / acurl 1.2.1 of the medians (CPU: lower is better; req/s: higher "
        "is better). In the paced mode the rate is fixed, so CPU per request (and the CPU share) "
        "is the figure; in the unpaced mode the runner uses its whole core, so requests/s is.",
        "",
    ]
    problems = [r for r in records if not r["ok"]]
    skipped = meta.get("skipped") or {}
    if problems or skipped:
        lines += ["## Problems", ""]
        for name, why in skipped.items():
            lines.append(f"- {name}: skipped: {why}")
        for r in problems:
            why = r.get("failed") or (
                f"errors {r.get('errors')} ({r.get('first_error', '')[:120]}), bad status "
                f"{r.get('bad_status')}, client requests {r.get('requests_total')} vs nginx "
                f"{r.get('nginx_requests')}, protocols {r.get('protocols')}"
            )
            lines.append(f"- round {r['round']} {r['mode']} {r['variant']}: {why[:400]}")
        lines.append("")
    lines += [
        "## Notes",
        "",
        f"- acurl_rs measured: {meta['acurl_rs']}; its `session()` defaults (what the drop-in "
        f"gets): connection_scope={meta['acurl_rs_defaults']['session_scope_default']!r}, "
        f"tls_sessions={meta['acurl_rs_defaults']['tls_sessions_default']!r}.",
        "- Requests are counted twice: `http_metrics` messages in the runner and nginx's access "
        "log (`?p=<run>.<phase>`); a run whose counts differ, that had errors or any response "
        "other than HTTP/2 is left out of the medians and listed above.",
        "- `mite scenario test` runs with `--spawn-rate=1000000` so mite's spawn limit (1000 "
        "journeys/s by default) does not cap the unpaced runs; the paced runs start each of "
        "their 60 slots at a random point of the first 0.5 s so the journeys do not come in "
        "waves. The message processors are mite's defaults (HttpStatsOutput, MsgOutput) plus the "
        "counter, and mite's collector writes every message to disk, as it does in a real "
        "`scenario test`.",
        "- The adapter variants are given `verify=False` (acurl cannot verify); the drop-in uses "
        "mite's `wrapper.session()` as it is, so it verifies against the benchmark's CA.",
        "",
    ]
    return "\n".join(lines)


def chart(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(summary)
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 5.5), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, mode in zip(axes[0], modes, strict=True):
        table = summary[mode]
        names = [v for v, row in table.items() if row["cpu_us_per_req"]]
        floor = table.get("floor", {}).get("cpu_us_per_req")
        for i, name in enumerate(names):
            s = table[name]["cpu_us_per_req"]
            err = [[s.median - s.values[0]], [s.values[-1] - s.median]]
            ax.bar(i, s.median, 0.7, color=colors(i % 10), yerr=err, capsize=3)
            label = f"{s.median:.0f}"
            if mode == "unpaced" and table[name]["rps"]:
                label += f"\n{table[name]['rps'].median:,.0f}/s"
            ax.annotate(
                label,
                (i, s.values[-1]),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 3),
                textcoords="offset points",
            )
        ax.set_ylim(top=ax.get_ylim()[1] * 1.1)  # room for the labels
        if floor:
            ax.axhline(floor.median, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(names)), names, fontsize=8, rotation=20)
        ax.set_ylabel("runner CPU µs per request (lower is better)")
        ax.set_title(MODES[mode]["title"], fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        "mite 2.11 `scenario test`, journey = new session + 5 GETs, HTTP/2 TLS "
        "(median, min-max; dashed: no-HTTP floor)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def _versions(python: str, dists: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for d in sys.argv[1:]:\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    proc = subprocess.run([python, "-c", code, *dists], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 rounds, 1 s warm-up, 3 s window")
    p.add_argument("--rounds", type=int, help="override the profile's rounds")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated")
    p.add_argument("--no-install", action="store_true", help="do not apt-get / pip install")
    p.add_argument("--note", default="", help="a line for the report (e.g. 'taken under load')")
    p.add_argument("--out", default=str(BENCH / "results"), help="results directory")
    p.add_argument("--chart", default=str(ROOT / "docs" / "bench_mite.png"))
    return p.parse_args()


def _pick(value: str, allowed: list[str], what: str) -> list[str]:
    picked = [v.strip() for v in value.split(",") if v.strip()]
    if unknown := [v for v in picked if v not in allowed]:
        sys.exit(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return [v for v in allowed if v in picked]


def main() -> None:
    args = parse_args()
    profile = PROFILES["quick" if args.quick else "full"]
    if args.rounds:
        profile = Profile(args.rounds, profile.warmup, profile.window)
    variants = _pick(args.variants, list(VARIANTS), "variants")
    modes = _pick(args.modes, list(MODES), "modes")
    started = time.monotonic()
    loadavg_before = " ".join(f"{x:.2f}" for x in os.getloadavg())

    skipped = setup(not args.no_install, "acurl" in variants)
    workdir = Path(tempfile.mkdtemp(prefix="acurl-mite-bench-"))
    snapshot = setup_env.snapshot_acurl_rs(workdir / "acurl_rs_build")
    acurl_rs_id = setup_env.extension_id(workdir / "acurl_rs_build" / "acurl_rs")
    probe = probe_acurl_rs(os.environ | snapshot)
    if not probe["tls_sessions"] or not probe["adapter_tls_sessions"]:
        skipped["session_tls"] = "this acurl_rs has no tls_sessions= option yet"
    variants = [v for v in variants if v not in skipped]
    for name, why in skipped.items():
        log(f"skipped: {name}: {why}")
    log(
        f"setup done in {time.monotonic() - started:.0f}s; variants: {', '.join(variants)}; "
        f"acurl_rs session() defaults: connection_scope={probe['session_scope_default']!r}, "
        f"tls_sessions={probe['tls_sessions_default']!r}"
    )

    bench = MiteBench(profile, workdir, probe["tls_sessions"])
    bench.acurl_rs_path = snapshot["PYTHONPATH"]
    bench.nginx.start()
    try:
        for rnd in range(profile.rounds):
            for mode in modes:
                shift = rnd % len(variants)  # rotate the order between rounds
                for variant in variants[shift:] + variants[:shift]:
                    bench.run(variant, mode, rnd)
    finally:
        bench.nginx.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    versions = {"mite": "?", "acurl_rs": probe["version"]}
    versions |= _versions(sys.executable, ["mite", "msgpack", "uvloop", "pyzmq"])
    if "acurl" in variants:
        versions |= {"acurl": _versions(str(setup_env.PEERS_PY), ["acurl"]).get("acurl", "?")}
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "argv": " ".join(sys.argv[1:]) or "no arguments",
        "profile": "quick" if args.quick else "full",
        "rounds": profile.rounds,
        "warmup": profile.warmup,
        "window": profile.window,
        "commit": git_commit(),
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": f"Linux {platform.release()}",
        "python": platform.python_version(),
        "nginx": nginx_version(),
        "server_cpu": bench.server_cpu,
        "client_cpu": bench.client_cpu,
        "loadavg_before": loadavg_before,
        "loadavg_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "note": args.note,
        "variants": variants,
        "modes": modes,
        "skipped": skipped,
        "versions": versions,
        "acurl_rs": f"extension {acurl_rs_id}",
        "acurl_rs_defaults": probe,
        "seconds": round(time.monotonic() - started),
    }
    summary = summarize(bench.records, variants, modes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "summary": _jsonable(summary), "runs": bench.records}
    (out / "mite.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "mite.md").write_text(markdown(summary, meta, bench.records))
    log(f"wrote {out / 'mite.md'} and mite.json")
    try:
        Path(args.chart).parent.mkdir(parents=True, exist_ok=True)
        chart(summary, Path(args.chart))
        log(f"wrote {args.chart}")
    except ImportError as exc:
        log(f"no chart: {exc}")
    log(f"total {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
