"""Turns the run records into results.json, results.md (with the target ratios) and the chart.

Every figure is the median over repeats with the min-max spread. Runs that failed, had errors or
answered with another HTTP version than the cell asks for are kept in the JSON but left out of
the medians (the markdown says so). "Best loop" compares each client on the loop (uvloop or
asyncio) where it did best, so no client is judged on its weaker loop.
"""

from __future__ import annotations

import statistics
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

Record = dict[str, Any]
KIB = 1024

# Targets from the issue: (label, comparison, limit).
TARGETS = {
    "cpu_vs_python": "acurl_rs CPU/request vs best other Python client",
    "cpu_vs_h2load": "acurl_rs CPU/request vs h2load",
    "rps_highest": "acurl_rs req/s vs best other Python client",
    "journeys": "journeys, wrapper scope: acurl_rs CPU/request vs acurl 1.2.1",
    "fixed": "fixed rate: acurl_rs net CPU vs acurl 1.2.1 net CPU",
    "waiting": "waiting: acurl_rs client CPU seconds (200 requests, 2 s)",
    "memory": "memory: acurl_rs heap (mallinfo2) per idle HTTP/2 TLS connection",
}


class Stat:
    """Median and spread of one metric over repeats."""

    def __init__(self, values: Iterable[float]) -> None:
        self.values = sorted(values)

    def __bool__(self) -> bool:
        return bool(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def as_dict(self) -> dict[str, Any]:
        if not self.values:
            return {"median": None}
        return {
            "median": self.median,
            "min": self.values[0],
            "max": self.values[-1],
            "n": len(self.values),
        }

    def fmt(self, spec: str = ",.0f", scale: float = 1.0) -> str:
        if not self.values:
            return "-"
        med = format(self.median / scale, spec)
        if len(self.values) == 1:
            return med
        lo, hi = (format(v / scale, spec) for v in (self.values[0], self.values[-1]))
        return f"{med} ({lo}-{hi})"


def valid(record: Record) -> bool:
    return not record.get("failed") and not record.get("errors") and record.get("version_ok", True)


def group(records: list[Record], workload: str) -> dict[tuple[str, ...], list[Record]]:
    out: dict[tuple[str, ...], list[Record]] = defaultdict(list)
    for r in records:
        if r["workload"] == workload and not r.get("unsupported"):
            out[(r["cell"], r["client"], r.get("variant", ""), r["loop"])].append(r)
    return out


def stat(runs: list[Record], metric: str | Callable[[Record], float | None]) -> Stat:
    get = metric if callable(metric) else (lambda r: r.get(metric))
    return Stat(v for r in runs if valid(r) and (v := get(r)) is not None)


def best_loop(
    groups: dict[tuple[str, ...], list[Record]],
    cell: str,
    client: str,
    metric: str,
    lower_is_better: bool,
    variant: str = "",
) -> tuple[str, Stat]:
    """(loop, stat) of the loop where `client` did best on `metric` in `cell`."""
    best: tuple[str, Stat] = ("", Stat([]))
    for (c, cl, var, loop), runs in groups.items():
        if (c, cl, var) != (cell, client, variant):
            continue
        s = stat(runs, metric)
        if not s:
            continue
        if not best[1] or (s.median < best[1].median) == lower_is_better:
            best = (loop, s)
    return best


def verdict(value: float | None, limit: float, higher_ok: bool = False) -> str:
    if value is None or value != value:
        return "n/a"
    ok = value >= limit if higher_ok else value <= limit
    return "PASS" if ok else "FAIL"


# -- summary ---------------------------------------------------------------------------------


def summarize(records: list[Record], cells: dict[str, Any], clients: list[str]) -> dict[str, Any]:
    """Medians per group, and the target ratios."""
    summary: dict[str, Any] = {"groups": [], "targets": []}
    for workload in ("steady", "journeys", "fixed", "waiting", "memory"):
        for (cell, client, variant, loop), runs in sorted(group(records, workload).items()):
            entry = {
                "workload": workload,
                "cell": cell,
                "client": client,
                "variant": variant,
                "loop": loop,
                "runs": len(runs),
                "valid_runs": sum(map(valid, runs)),
            }
            for metric in METRICS[workload]:
                entry[metric] = stat(runs, metric).as_dict()
            entry["versions"] = _versions(runs)
            entry["errors"] = sum(r.get("errors", 0) for r in runs)
            problems = sorted({_problem(r) for r in runs if not valid(r)})
            if problems:
                entry["problems"] = problems
            summary["groups"].append(entry)
    summary["targets"] = targets(records, cells, clients)
    return summary


METRICS = {
    "steady": ("rps", "cpu_us_per_req", "accepts"),
    "journeys": (
        "rps",
        "cpu_us_per_req",
        "conns_per_journey",
        "handshakes_per_journey",
        "resumed_share",
    ),
    "fixed": ("cpu_share", "rps", "worst_lag_ms"),
    "waiting": ("cpu_s", "idle_cpu_us_per_s", "seconds"),
    "memory": ("rss_per_session", "rss_per_connection", "heap_per_connection", "connections_held"),
}


def _versions(runs: list[Record]) -> dict[str, int]:
    seen: dict[str, int] = defaultdict(int)
    for r in runs:
        for version, n in (r.get("versions") or {}).items():
            seen[version] += n
    return dict(seen)


def _problem(r: Record) -> str:
    if r.get("failed"):
        return f"failed: {r['failed'][:160]}"
    if not r.get("version_ok", True):
        return f"wrong HTTP version: {r.get('versions')}"
    return f"{r.get('errors')} errors, e.g. {r.get('first_error', '?')[:120]}"


def targets(records: list[Record], cells: dict[str, Any], clients: list[str]) -> list[dict]:
    out = []
    steady = group(records, "steady")
    others = [c for c in clients if c not in ("acurl_rs", "h2load", "wrk", "null")]
    for cell in cells:
        ours_loop, ours = best_loop(steady, cell, "acurl_rs", "cpu_us_per_req", True)
        if not ours:
            continue
        rivals = [(c, *best_loop(steady, cell, c, "cpu_us_per_req", True)) for c in others]
        rivals = [r for r in rivals if r[2]]
        if rivals:
            name, loop, best = min(rivals, key=lambda r: r[2].median)
            ratio = ours.median / best.median
            # issue 11: <= 0.8x the best other Python client in every cell (0.5x long-term)
            out.append(_target("cpu_vs_python", cell, ratio, 0.8, f"{name} ({loop})", ours_loop))
        _, h2load = best_loop(steady, cell, "h2load", "cpu_us_per_req", True)
        if h2load:
            out.append(
                _target(
                    "cpu_vs_h2load", cell, ours.median / h2load.median, 2.5, "h2load", ours_loop
                )
            )
        _, our_rps = best_loop(steady, cell, "acurl_rs", "rps", False)
        fast = [(c, *best_loop(steady, cell, c, "rps", False)) for c in others]
        fast = [r for r in fast if r[2]]
        if fast:
            name, loop, best = max(fast, key=lambda r: r[2].median)
            out.append(
                _target(
                    "rps_highest",
                    cell,
                    our_rps.median / best.median,
                    1.0,
                    f"{name} ({loop})",
                    "best",
                    higher_ok=True,
                )
            )
    journeys = group(records, "journeys")
    our_loop, ours = best_loop(
        journeys, "h2-journeys", "acurl_rs", "cpu_us_per_req", True, "wrapper"
    )
    their_loop, theirs = best_loop(journeys, "h2-journeys", "acurl", "cpu_us_per_req", True)
    if ours and theirs:
        ratio = ours.median / theirs.median
        out.append(
            _target("journeys", "h2-journeys", ratio, 0.4, f"acurl ({their_loop})", our_loop)
        )
    fixed = group(records, "fixed")
    for loop in sorted({k[3] for k in fixed}, key=lambda name: name != "uvloop"):
        share = {
            c: stat(fixed.get(("h2-fixed", c, "", loop), []), "cpu_share")
            for c in ("acurl_rs", "acurl", "null")
        }
        if all(share.values()):
            floor = share["null"].median
            net = (share["acurl_rs"].median - floor) / max(share["acurl"].median - floor, 1e-9)
            against = f"acurl ({loop}), both minus null"
            out.append(_target("fixed", "h2-fixed", net, 0.5, against, loop))
    loop, wait = best_loop(group(records, "waiting"), "h1-wait", "acurl_rs", "cpu_s", True)
    if wait:
        out.append(_target("waiting", "h1-wait", wait.median, 0.05, "absolute (CPU s)", loop))
    loop, mem = best_loop(
        group(records, "memory"), "h2-memory", "acurl_rs", "heap_per_connection", True
    )
    if mem:
        out.append(_target("memory", "h2-memory", mem.median / KIB, 64, "absolute (KiB)", loop))
    return out


def _target(
    key: str,
    cell: str,
    value: float,
    limit: float,
    against: str,
    ours: str = "",
    higher_ok: bool = False,
) -> dict[str, Any]:
    return {
        "target": key,
        "label": TARGETS[key],
        "cell": cell,
        "value": value,
        "limit": limit,
        "against": against,
        "acurl_rs_loop": ours,
        "result": verdict(value, limit, higher_ok),
        "rule": f"{'>=' if higher_ok else '<='} {limit:g}",
    }


# -- markdown ----------------------------------------------------------------------------------


def markdown(
    records: list[Record],
    summary: dict[str, Any],
    meta: dict[str, Any],
    cells: dict[str, Any],
    clients: list[str],
) -> str:
    md: list[str] = ["# acurl_rs benchmark results", ""]
    md += [
        f"Generated {meta['date']} by `bench/run.py {meta['argv']}` "
        f"({meta['profile']} profile, {meta['repeats']} repeat(s); commit {meta['commit']}).",
        "",
        f"Machine: {meta['cpu_model']}, {meta['cpus']} CPUs; {meta['kernel']}; "
        f"Python {meta['python']}. nginx {meta['nginx']} (one worker pinned to CPU "
        f"{meta['server_cpu']}); every client in its own process pinned to CPU "
        f"{meta['client_cpu']}. Load average at start: {meta['loadavg']}.",
        "",
        "Figures: median over repeats (min-max). CPU is the client process's user+sys "
        "(getrusage RUSAGE_SELF, all threads) over the timed section only, after a warm-up; "
        "h2load and wrk are sampled from /proc over the same kind of window "
        "(see bench/README.md).",
        "",
        "## Targets",
        "",
        "| target | cell | acurl_rs loop | against | value | rule | result |",
        "|---|---|---|---|---:|---|---|",
    ]
    for t in summary["targets"]:
        md.append(
            f"| {t['label']} | {t['cell']} | {t['acurl_rs_loop'] or '-'} | {t['against']} "
            f"| {t['value']:.2f} | {t['rule']} | **{t['result']}** |"
        )
    md.append("")
    md += _steady_tables(records, cells, clients)
    md += _journeys_table(records)
    md += _fixed_table(records)
    md += _waiting_table(records)
    md += _memory_table(records)
    md += _problems(records, summary, meta)
    return "\n".join(md) + "\n"


def _label(client: str, variant: str = "") -> str:
    return f"{client} [{variant}]" if variant else client


def _steady_tables(records: list[Record], cells: dict[str, Any], clients: list[str]) -> list[str]:
    groups = group(records, "steady")
    cell_names = [c for c in cells if any(k[0] == c for k in groups)]
    rows = sorted(
        {(k[1], k[3]) for k in groups},
        key=lambda x: (clients.index(x[0]) if x[0] in clients else 99, x[1]),
    )
    md = ["## Steady load", ""]
    for c in cell_names:
        md.append(f"- `{c}`: {cells[c]['title']}")
    md.append("")
    for title, metric, spec in (
        ("Requests per second", "rps", ",.0f"),
        ("Client CPU microseconds per request", "cpu_us_per_req", ",.1f"),
    ):
        md += [f"### {title}", "", "| client | loop | " + " | ".join(cell_names) + " |"]
        md.append("|---|---|" + "---:|" * len(cell_names))
        for client, loop in rows:
            cols = []
            for cell in cell_names:
                runs = groups.get((cell, client, "", loop), [])
                if not runs:
                    cols.append("")
                elif not any(map(valid, runs)):
                    cols.append("✗")
                else:
                    cols.append(stat(runs, metric).fmt(spec))
            md.append(f"| {client} | {loop} | " + " | ".join(cols) + " |")
        md.append("")
    md += [
        "### HTTP version check and connections",
        "",
        "Responses by HTTP version as the client reported them (h2load: its ALPN result; wrk: "
        "HTTP/1.1 only), and new connections nginx accepted in the timed sections (all "
        "repeats). ✗ = runs left out (see Problems).",
        "",
        "| client | loop | " + " | ".join(cell_names) + " |",
        "|---|---|" + "---|" * len(cell_names),
    ]
    for client, loop in rows:
        cols = []
        for cell in cell_names:
            runs = groups.get((cell, client, "", loop), [])
            if not runs:
                cols.append("")
                continue
            seen = _versions(runs)
            text = ", ".join(f"HTTP/{v}: {n:,}" for v, n in sorted(seen.items()))
            conns = sum(r.get("accepts", 0) for r in runs)
            mark = "" if all(map(valid, runs)) else " ✗"
            cols.append(f"{text}; conns {conns}{mark}")
        md.append(f"| {client} | {loop} | " + " | ".join(cols) + " |")
    md.append("")
    return md


def _journeys_table(records: list[Record]) -> list[str]:
    groups = group(records, "journeys")
    if not groups:
        return []
    md = [
        "## Journeys",
        "",
        "A new session per journey of 5 requests, 100 journeys at a time, HTTP/2 over TLS. "
        "Connections per journey: nginx stub_status accepts; handshakes per journey: "
        "connections first seen in the timed phase of the access log; resumed: share of those "
        "handshakes that resumed a TLS session (`$ssl_session_reused`).",
        "",
        "| client | loop | journeys | req/s | CPU µs/req | conns/journey | handshakes/journey "
        "| resumed |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (_cell, client, variant, loop), runs in sorted(groups.items()):
        journeys = runs[0].get("journeys", 0)
        md.append(
            f"| {_label(client, variant)} | {loop} | {journeys:,} | {stat(runs, 'rps').fmt()} "
            f"| {stat(runs, 'cpu_us_per_req').fmt(',.1f')} "
            f"| {stat(runs, 'conns_per_journey').fmt('.3f')} "
            f"| {stat(runs, 'handshakes_per_journey').fmt('.3f')} "
            f"| {stat(runs, 'resumed_share').fmt('.0%')} |"
        )
    md.append("")
    return md


def _fixed_table(records: list[Record]) -> list[str]:
    groups = group(records, "fixed")
    if not groups:
        return []
    floor = {
        loop: stat(runs, "cpu_share") for (_c, cl, _v, loop), runs in groups.items() if cl == "null"
    }
    md = [
        "## Fixed rate",
        "",
        "600 requests/s over HTTP/2 TLS from 200 warmed sessions, each request its own task "
        "launched on schedule; CPU as a share of one core. `null` runs the same scheduler and "
        "tasks but sends nothing (the harness floor); net = client minus null.",
        "",
        "| client | loop | seconds | achieved req/s | CPU share | net CPU share | worst lag ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (_cell, client, _variant, loop), runs in sorted(groups.items()):
        share = stat(runs, "cpu_share")
        base = floor.get(loop)
        net = f"{share.median - base.median:.3f}" if share and base and client != "null" else "-"
        seconds = statistics.median(r.get("seconds", 0) for r in runs)
        md.append(
            f"| {client} | {loop} | {seconds:.1f} | {stat(runs, 'rps').fmt()} "
            f"| {share.fmt('.3f')} | {net} | {stat(runs, 'worst_lag_ms').fmt('.1f')} |"
        )
    md.append("")
    return md


def _waiting_table(records: list[Record]) -> list[str]:
    groups = group(records, "waiting")
    if not groups:
        return []
    md = [
        "## Waiting",
        "",
        "200 concurrent requests, each on a fresh HTTP/1.1 connection, to a server (a separate "
        "asyncio process pinned to the server CPU) that answers after 2 s. CPU s: the client's "
        "whole run (sending, connecting, waiting, receiving); idle: CPU µs per second while "
        "every request is waiting (0.5 s to 1.5 s in).",
        "",
        "| client | loop | wall s | CPU s | idle CPU µs/s |",
        "|---|---|---:|---:|---:|",
    ]
    busy = []
    for (_cell, client, _variant, loop), runs in sorted(groups.items()):
        idle = stat(runs, "idle_cpu_us_per_s")
        md.append(
            f"| {client} | {loop} | {stat(runs, 'seconds').fmt('.2f')} "
            f"| {stat(runs, 'cpu_s').fmt('.4f')} | {idle.fmt(',.0f')} |"
        )
        if idle and idle.median > 100_000:
            busy.append(f"{client} ({loop}) keeps {idle.median / 1e4:.0f}% of a core busy")
    md.append("")
    if busy:
        md += [f"While nothing happens but waiting, {'; '.join(busy)}.", ""]
    return md


def _memory_table(records: list[Record]) -> list[str]:
    groups = group(records, "memory")
    if not groups:
        return []
    md = [
        "## Memory",
        "",
        "RSS growth of the client process: per idle session (sessions made, nothing sent), "
        "then per connection once every session has made one HTTP/2 TLS request and holds its "
        "connection idle (connections held: nginx's active count). acurl 1.2.1 sessions share "
        "the wrapper's connections, so it holds few and its per-connection figure is n/a; its "
        "per used session figure is shown instead. Heap: malloc'd bytes in use (glibc "
        "mallinfo2), which unlike RSS falls when memory is freed.",
        "",
        "| client | loop | sessions | KiB per idle session | KiB per idle connection "
        "| heap KiB per idle connection | KiB per used session | connections held |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (_cell, client, _variant, loop), runs in sorted(groups.items()):
        md.append(
            f"| {client} | {loop} | {runs[0].get('sessions', 0):,} "
            f"| {stat(runs, 'rss_per_session').fmt('.1f', KIB)} "
            f"| {stat(runs, 'rss_per_connection').fmt('.1f', KIB)} "
            f"| {stat(runs, 'heap_per_connection').fmt('.1f', KIB)} "
            f"| {stat(runs, 'rss_per_used_session').fmt('.1f', KIB)} "
            f"| {stat(runs, 'connections_held').fmt(',.0f')} |"
        )
    md.append("")
    return md


def _problems(records: list[Record], summary: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    md = ["## Problems, skipped cells and unavailable clients", ""]
    for note in meta.get("notes", []):
        md.append(f"- note: {note}")
    for name, why in sorted(meta.get("unavailable", {}).items()):
        md.append(f"- **{name}** unavailable: {why}")
    skipped = sorted(
        {(r["client"], r["cell"], r["unsupported"]) for r in records if r.get("unsupported")}
    )
    for client, cell, why in skipped:
        md.append(f"- {client} skipped in `{cell}`: {why}")
    for g in summary["groups"]:
        for problem in g.get("problems", []):
            label = _label(g["client"], g["variant"])
            md.append(
                f"- {label} ({g['loop']}) in `{g['cell']}`: {g['runs'] - g['valid_runs']} of "
                f"{g['runs']} run(s) left out: {problem}"
            )
    if len(md) == 2:
        md.append("- none")
    md += ["", "## Versions", ""]
    for name, version in sorted(meta.get("versions", {}).items()):
        md.append(f"- {name}: {version}")
    md.append("")
    return md


# -- chart -------------------------------------------------------------------------------------


def chart(records: list[Record], cells: dict[str, Any], clients: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    steady = group(records, "steady")
    cell_names = [c for c in cells if any(k[0] == c for k in steady)]
    names = [c for c in clients if any(k[1] == c for k in steady)]
    journeys = group(records, "journeys")
    fig, axes = plt.subplots(
        1,
        2 if journeys else 1,
        figsize=(16 if journeys else 13, 6.5),
        gridspec_kw={"width_ratios": [4, 1]} if journeys else None,
        squeeze=False,
    )
    ax = axes[0][0]
    width = 0.8 / max(len(names), 1)
    colors = plt.get_cmap("tab10")
    for i, client in enumerate(names):
        xs, meds, lo, hi = [], [], [], []
        for j, cell in enumerate(cell_names):
            _loop, s = best_loop(steady, cell, client, "cpu_us_per_req", True)
            if s:
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                meds.append(s.median)
                lo.append(s.median - s.values[0])
                hi.append(s.values[-1] - s.median)
        if xs:
            ax.bar(xs, meds, width, label=client, color=colors(i % 10), yerr=[lo, hi], capsize=2)
            for x, m in zip(xs, meds, strict=True):
                ax.annotate(
                    f"{m:.0f}" if m >= 10 else f"{m:.1f}",
                    (x, m),
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
    ax.set_xticks(
        range(len(cell_names)), [f"{c}\n{cells[c]['title']}" for c in cell_names], fontsize=7
    )
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("client CPU µs per request (log; lower is better)")
    ax.set_title("Steady load: CPU per request (best loop per client, median, min-max)")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(names), loc="upper center", bbox_to_anchor=(0.5, -0.16))
    if journeys:
        ax2 = axes[0][1]
        labels, meds, lo, hi = [], [], [], []
        for (_cell, client, variant, loop), runs in sorted(journeys.items()):
            s = stat(runs, "cpu_us_per_req")
            if s:
                labels.append(f"{_label(client, variant)} {loop}")
                meds.append(s.median)
                lo.append(s.median - s.values[0])
                hi.append(s.values[-1] - s.median)
        ax2.bar(range(len(meds)), meds, yerr=[lo, hi], capsize=2, color="tab:gray")
        ax2.set_xticks(range(len(labels)), labels, fontsize=7, rotation=60, ha="right")
        ax2.set_title("Journeys (h2, TLS): CPU µs/request")
        ax2.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def git_commit() -> str:
    """The commit the benchmarked code is at, and whether its sources had local changes."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "python", "Cargo.toml"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return f"{rev}{' + uncommitted changes' if dirty else ''}" or "unknown"
    except OSError:
        return "unknown"
