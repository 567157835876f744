"""What the CLI measures during a run and how it reports it: text, JSON and a PNG plot.

`RunStats` is fed one completed request at a time and stays cheap per request (a few histogram
records and counter bumps), so the bookkeeping does not eat the throughput it measures.
`build_report` turns it into one plain dict; the text report and `--json` are both made from
that dict, so they cannot disagree.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import AcurlError
    from .response import _Response

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# libcurl's timings, each cumulative from the start of the transfer (not per phase).
PHASES = ("namelookup", "connect", "appconnect", "starttransfer", "total")

# HDR histogram range in microseconds: 1 us to one hour, 3 significant digits (0.1% error).
_HDR_LOWEST_US = 1
_HDR_HIGHEST_US = 3_600_000_000
_HDR_DIGITS = 3


def _hdr_class() -> Any | None:
    try:
        from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]
    except ImportError:
        return None
    return HdrHistogram


def hdr_available() -> bool:
    """Whether `hdrhistogram` can be imported here (a parent tells its workers, so that all of
    a run's histograms are of one kind)."""
    return _hdr_class() is not None


def _new_hdr_histogram() -> Any | None:
    cls = _hdr_class()
    return None if cls is None else cls(_HDR_LOWEST_US, _HDR_HIGHEST_US, _HDR_DIGITS)


class Distribution:
    """Durations in seconds -> count, mean, percentiles, max.

    Uses an HDR histogram (fixed memory, 0.1% precision) when `hdrhistogram` is installed (and
    `hdr` is not False), and otherwise keeps every value for exact percentiles. Mean and max are
    always exact. `to_payload` and `merge` carry one across processes.
    """

    def __init__(self, *, hdr: bool = True) -> None:
        self._hdr = _new_hdr_histogram() if hdr else None
        self._values: array[float] = array("d")
        self._sorted = True
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    @property
    def kind(self) -> str:
        return "hdr" if self._hdr is not None else "exact"

    def record(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)
        if self._hdr is not None:
            micros = min(max(round(seconds * 1e6), 0), _HDR_HIGHEST_US)
            self._hdr.record_value(micros)
        else:
            self._values.append(seconds)
            self._sorted = False

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentile(self, percent: float) -> float:
        """The value at `percent` (0-100): nearest rank, capped at the exact max."""
        if not self.count:
            return 0.0
        if self._hdr is not None:
            # HDR answers with its bucket's upper edge, which can pass the real max.
            return min(self._hdr.get_value_at_percentile(percent) / 1e6, self.max)
        if not self._sorted:
            self._values = array("d", sorted(self._values))
            self._sorted = True
        rank = math.ceil(percent / 100.0 * self.count)
        return self._values[min(max(rank, 1), self.count) - 1]

    def to_payload(self) -> dict[str, Any]:
        """Plain picklable data: the HDR histogram in its encoded form, or the values."""
        encoded = self._hdr.encode() if self._hdr is not None and self.count else None
        return {
            "count": self.count,
            "total": self.total,
            "max": self.max,
            "hdr": encoded,
            "values": None if self._hdr is not None else self._values.tobytes(),
        }

    def merge(self, payload: dict[str, Any]) -> None:
        """Adds another process's distribution (from `to_payload`) to this one."""
        if not payload["count"]:
            return
        self.count += payload["count"]
        self.total += payload["total"]
        self.max = max(self.max, payload["max"])
        if payload["hdr"] is not None:
            cls = _hdr_class()
            if self._hdr is None or cls is None:
                raise ValueError("an HDR histogram cannot be merged into exact values")
            self._hdr.add(cls.decode(payload["hdr"]))
            return
        values: array[float] = array("d")
        values.frombytes(payload["values"])
        if self._hdr is not None:
            for seconds in values:
                self._hdr.record_value(min(max(round(seconds * 1e6), 0), _HDR_HIGHEST_US))
        else:
            self._values.extend(values)
            self._sorted = False


class RunStats:
    """Everything counted during a run. `keep_timeline` also keeps each completion time,
    which only the plot needs (8 bytes a request)."""

    def __init__(self, *, keep_timeline: bool = False, hdr: bool = True) -> None:
        self.latency = Distribution(hdr=hdr)
        self.phases = {name: Distribution(hdr=hdr) for name in PHASES}
        self.status_codes: Counter[int] = Counter()
        self.http_versions: Counter[str] = Counter()
        self.errors: Counter[tuple[str, int | None]] = Counter()
        self.error_examples: dict[tuple[str, int | None], str] = {}
        self.connections_opened = 0
        self.succeeded = 0
        self.failed = 0
        self.keep_timeline = keep_timeline
        self.ok_times: array[float] = array("d")
        self.error_times: array[float] = array("d")

    @property
    def completed(self) -> int:
        return self.succeeded + self.failed

    def record_response(self, response: _Response, latency: float, finished_at: float) -> None:
        """`latency` is the caller's own clock (it includes any queueing before curl saw the
        request); `finished_at` is seconds since the run started."""
        self.succeeded += 1
        self.latency.record(latency)
        phases = self.phases
        phases["namelookup"].record(response.namelookup_time)
        phases["connect"].record(response.connect_time)
        phases["appconnect"].record(response.appconnect_time)
        phases["starttransfer"].record(response.starttransfer_time)
        phases["total"].record(response.total_time)
        self.status_codes[response.status_code] += 1
        self.http_versions[response.http_version] += 1
        self.connections_opened += response.num_connects
        if self.keep_timeline:
            self.ok_times.append(finished_at)

    def record_error(self, error: AcurlError, finished_at: float) -> None:
        self.failed += 1
        key = (error.category, error.code)
        self.errors[key] += 1
        if key not in self.error_examples:
            self.error_examples[key] = error.curl_message or str(error)
        if self.keep_timeline:
            self.error_times.append(finished_at)

    def to_payload(self) -> dict[str, Any]:
        """Everything counted, as plain picklable data for the parent process to `merge`."""
        return {
            "latency": self.latency.to_payload(),
            "phases": {name: dist.to_payload() for name, dist in self.phases.items()},
            "status_codes": dict(self.status_codes),
            "http_versions": dict(self.http_versions),
            "errors": [
                (category, code, count, self.error_examples[(category, code)])
                for (category, code), count in self.errors.items()
            ],
            "connections_opened": self.connections_opened,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "ok_times": self.ok_times.tobytes(),
            "error_times": self.error_times.tobytes(),
        }

    def merge(self, payload: dict[str, Any], time_offset: float = 0.0) -> None:
        """Adds another process's counts; `time_offset` is how much later than this run's start
        that process started, which moves its timeline onto this one's clock."""
        self.latency.merge(payload["latency"])
        for name, dist in self.phases.items():
            dist.merge(payload["phases"][name])
        self.status_codes.update(payload["status_codes"])
        self.http_versions.update(payload["http_versions"])
        for category, code, count, example in payload["errors"]:
            self.errors[(category, code)] += count
            self.error_examples.setdefault((category, code), example)
        self.connections_opened += payload["connections_opened"]
        self.succeeded += payload["succeeded"]
        self.failed += payload["failed"]
        if self.keep_timeline:
            for mine, theirs in ((self.ok_times, "ok_times"), (self.error_times, "error_times")):
                times: array[float] = array("d")
                times.frombytes(payload[theirs])
                mine.extend(t + time_offset for t in times)


# -- the report as data ---------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 4)


def _percentile_key(percent: float) -> str:
    return f"p{percent:g}"


def _latency_summary(latency: Distribution) -> dict[str, float]:
    summary = {_percentile_key(p): _ms(latency.percentile(p)) for p in PERCENTILES}
    summary["max"] = _ms(latency.max)
    summary["mean"] = _ms(latency.mean)
    return summary


def build_report(run: dict[str, Any], stats: RunStats, elapsed: float) -> dict[str, Any]:
    """One JSON-ready dict: `run` describes what was asked, the rest what happened."""
    rate = stats.completed / elapsed if elapsed > 0 else 0.0
    return {
        **run,
        "elapsed_s": round(elapsed, 6),
        "requests": stats.completed,
        "succeeded": stats.succeeded,
        "failed": stats.failed,
        "requests_per_second": round(rate, 2),
        "latency_ms": _latency_summary(stats.latency),
        "phases_ms": {
            name: {"mean": _ms(dist.mean), "p99": _ms(dist.percentile(99.0))}
            for name, dist in stats.phases.items()
        },
        "status_codes": {str(code): n for code, n in sorted(stats.status_codes.items())},
        "errors": [
            {
                "category": category,
                "curl_code": code,
                "count": count,
                "example": stats.error_examples[(category, code)],
            }
            for (category, code), count in stats.errors.most_common()
        ],
        "connections_opened": stats.connections_opened,
        "http_versions": dict(stats.http_versions.most_common()),
        "percentiles_from": stats.latency.kind,
    }


# -- the report as text ---------------------------------------------------------------------


def format_ms(ms: float) -> str:
    """A duration given in ms, with a unit that keeps three significant digits readable."""
    if ms >= 1000.0:
        return f"{ms / 1000.0:.2f} s"
    if ms >= 100.0:
        return f"{ms:.0f} ms"
    if ms >= 1.0:
        return f"{ms:.2f} ms"
    if ms >= 0.01:
        return f"{ms * 1000.0:.0f} us"
    return f"{ms * 1000.0:.1f} us"


def _describe_run(report: dict[str, Any]) -> str:
    sessions = report["sessions"]
    session_text = f"{sessions} session{'s' if sessions != 1 else ''}"
    if report["model"] == "open":
        load = f"open model at {report['rate']:g} req/s over {session_text}"
    else:
        load = f"closed model: {report['concurrency']} workers over {session_text}"
    processes = report.get("processes", 1)
    if processes > 1:
        load += f" in {processes} processes"
    return (
        f"{load} ({report['connection_scope']} scope), HTTP {report['http_version']}, "
        f"{report['loop']} loop"
    )


def _counts_line(counts: dict[str, int], prefix: str = "") -> str:
    return ", ".join(f"{prefix}{key}: {n}" for key, n in counts.items()) or "none"


def _error_lines(errors: list[dict[str, Any]]) -> list[str]:
    if not errors:
        return ["Errors         none"]
    width = max(len(str(error["count"])) for error in errors)
    lines = []
    for index, error in enumerate(errors):
        label = "Errors" if index == 0 else ""
        code = "no code" if error["curl_code"] is None else f"curl {error['curl_code']}"
        lines.append(
            f"{label:<15}{error['count']:>{width}}  {error['category']} ({code}): "
            f"{error['example']}"
        )
    return lines


def _timing_lines(report: dict[str, Any]) -> list[str]:
    latency = report["latency_ms"]
    keys = [_percentile_key(p) for p in PERCENTILES] + ["max"]
    lines = [
        "Latency        " + "  ".join(f"{key} {format_ms(latency[key])}" for key in keys),
        "Phases         mean       p99   (libcurl timings, cumulative from transfer start)",
    ]
    for name, phase in report["phases_ms"].items():
        lines.append(f"  {name:<13}{format_ms(phase['mean']):>8}  {format_ms(phase['p99']):>8}")
    return lines


def _target_text(report: dict[str, Any]) -> str:
    if not report["embedded_target"]:
        return str(report["url"])
    urls = list(dict.fromkeys(entry["url"] for entry in report.get("per_process", [])))
    if len(urls) <= 1:
        return f"{report['url']} (embedded target)"
    ports = ", ".join(url.rstrip("/").rsplit(":", 1)[-1] for url in urls)
    return f"{report['url']} (embedded target, one per process: ports {ports})"


def _processes_line(report: dict[str, Any]) -> list[str]:
    per_process = report.get("per_process", [])
    if len(per_process) <= 1:
        return []
    requests = " + ".join(str(entry["requests"]) for entry in per_process)
    rates = " + ".join(f"{entry['requests_per_second']:.0f}" for entry in per_process)
    return [f"Processes      {len(per_process)}: {requests} requests, {rates} req/s"]


def _cpu_lines(report: dict[str, Any]) -> list[str]:
    cpu = report.get("cpu")
    if not cpu:
        return []
    elapsed = report["elapsed_s"]
    share = f" ({cpu['client_s'] / elapsed:.2f} of {cpu['cores']} cores)" if elapsed > 0 else ""
    line = f"CPU            client {cpu['client_s']:.2f} s{share}"
    if cpu["target_s"] is not None:
        line += (
            f", embedded target {cpu['target_s']:.2f} s "
            f"(busiest process {cpu['target_busiest']:.0%} of a core)"
        )
    lines = [line]
    if report.get("note"):
        lines.append(f"Note           {report['note']}")
    return lines


def format_text(report: dict[str, Any]) -> str:
    target = _target_text(report)
    lines = [
        f"Target         {report['method']} {target}",
        f"Load           {_describe_run(report)}",
        f"Requests       {report['requests']} in {report['elapsed_s']:.2f} s = "
        f"{report['requests_per_second']:.1f} req/s "
        f"({report['succeeded']} answered, {report['failed']} failed)",
        *_processes_line(report),
    ]
    if report["succeeded"]:
        lines.extend(_timing_lines(report))
    else:
        lines.append("Latency        no responses")
    lines.append(f"Status codes   {_counts_line(report['status_codes'])}")
    lines.extend(_error_lines(report["errors"]))
    lines.append(f"Connections    {report['connections_opened']} opened")
    lines.append(f"HTTP versions  {_counts_line(report['http_versions'], 'HTTP/')}")
    lines.extend(_cpu_lines(report))
    if report.get("stopped_early"):
        lines.append(f"Stopped early  {report['stopped_early']}")
    return "\n".join(lines)


# -- the report as a picture ----------------------------------------------------------------


class PlotUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def load_pyplot() -> Any:
    """pyplot on the headless Agg backend; PlotUnavailableError if matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailableError(
            "--plot needs matplotlib: pip install 'acurl_rs[plot]'"
        ) from None
    matplotlib.use("Agg")  # Files only: never try to open a window.
    import matplotlib.pyplot as plt

    return plt


# Percentiles for the latency curve, spaced evenly on the "number of nines" axis.
_CURVE_NINES = [i / 20 for i in range(0, 81)]  # 0 .. 4 nines: 0% .. 99.99%


def _throughput_series(
    times: array[float], elapsed: float, bin_s: float
) -> tuple[list[float], list[float]]:
    bins = max(1, math.ceil(elapsed / bin_s))
    counts = [0] * bins
    for t in times:
        counts[min(int(t / bin_s), bins - 1)] += 1
    starts = [i * bin_s for i in range(bins)]
    return starts, [c / bin_s for c in counts]


def write_plot(path: str, report: dict[str, Any], stats: RunStats) -> None:
    plt = load_pyplot()
    fig, (latency_ax, rate_ax) = plt.subplots(2, 1, figsize=(10, 8), constrained_layout=True)
    fig.suptitle(
        f"acurl-rs: {report['method']} {report['url']}\n{_describe_run(report)}", fontsize=10
    )
    _plot_latency(latency_ax, stats.latency)
    _plot_throughput(rate_ax, stats, report["elapsed_s"])
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _nines(percent: float) -> float:
    """Position of a percentile on the plot's x axis: 90% -> 1, 99% -> 2, 99.9% -> 3."""
    return -math.log10(1.0 - percent / 100.0)


def _plot_latency(ax: Any, latency: Distribution) -> None:
    values = [latency.percentile(100.0 * (1.0 - 10.0**-n)) * 1e3 for n in _CURVE_NINES]
    ax.plot(_CURVE_NINES, values, color="tab:blue")
    # Mark the percentiles the text report gives, so the two can be read side by side.
    for percent in PERCENTILES:
        value = latency.percentile(percent) * 1e3
        ax.plot(_nines(percent), value, "o", color="tab:blue", markersize=4)
        ax.annotate(
            f"p{percent:g} {format_ms(value)}",
            (_nines(percent), value),
            textcoords="offset points",
            xytext=(-6, 8),
            ha="right",
            fontsize=8,
        )
    tick_percents = [0.0, 50.0, 90.0, 99.0, 99.9, 99.99]
    ax.set_xticks([_nines(p) for p in tick_percents], [f"{p:g}%" for p in tick_percents])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(bottom=0)
    ax.set_title(
        f"Latency distribution ({latency.count} responses, max {format_ms(latency.max * 1e3)})"
    )
    ax.grid(color="0.9")


def _plot_throughput(ax: Any, stats: RunStats, elapsed: float) -> None:
    # About 60 bars whatever the run length, but no narrower than 10 ms.
    bin_s = max(elapsed / 60.0, 0.01)
    starts, ok_rate = _throughput_series(stats.ok_times, elapsed, bin_s)
    _, error_rate = _throughput_series(stats.error_times, elapsed, bin_s)
    ax.bar(starts, ok_rate, width=bin_s, align="edge", color="tab:green", label="answered")
    ax.bar(
        starts,
        error_rate,
        width=bin_s,
        align="edge",
        bottom=ok_rate,
        color="tab:red",
        label="failed",
    )
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("requests/s")
    ax.set_title(f"Completions over time ({bin_s * 1000:.0f} ms bins)")
    if stats.error_times:
        ax.legend(loc="upper right")
    ax.grid(axis="y", color="0.9")
