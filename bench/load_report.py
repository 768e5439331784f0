"""The report of `make load` (bench/load.py): what the run was asked for (`Settings`, from the
LOAD_* variables), the figures computed from Locust's samples (per endpoint; catalog reads and
/readyz while a slow payment was in flight and otherwise), the checks, and bench/results/load.md.
"""

from __future__ import annotations

import bisect
import math
import os
import platform
import shlex
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.stack import ROOT

RESULTS = ROOT / "bench" / "results"
ARTEFACTS = RESULTS / "load"
REPORT = RESULTS / "load.md"
SLOW_CARD = "4000000000000077"
SLOW_PAY = "POST /orders/{id}/pay/ (slow 0077)"
STALL_MS = 2000.0
EXPECTED_4XX = {409, 429}
CATALOG_READS = ("GET /products", "GET /categories")


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


@dataclass(frozen=True)
class Settings:
    """What the run is asked for (the LOAD_* variables; bench/load.py's docstring)."""

    products: int
    seconds: int
    users: int
    spawn_rate: float
    slow_share: float

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(
            products=env_int("LOAD_PRODUCTS", 100_000),
            seconds=env_int("LOAD_SECONDS", 60),
            users=env_int("LOAD_USERS", 50),
            spawn_rate=env_float("LOAD_SPAWN_RATE", 10),
            slow_share=env_float("LOAD_SLOW_SHARE", 0.2),
        )

    @property
    def parameters(self) -> str:
        return (
            f"LOAD_PRODUCTS={self.products} LOAD_SECONDS={self.seconds} LOAD_USERS={self.users} "
            f"LOAD_SPAWN_RATE={self.spawn_rate:g} LOAD_SLOW_SHARE={self.slow_share:g}"
        )


# =============================================================================
# Figures
# =============================================================================
def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least `share` of the values at or below it."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


def latency_row(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else math.nan,
    }


def endpoint_rows(run: dict[str, Any], seconds: float) -> list[dict[str, Any]]:
    by_name: dict[str, list[list[Any]]] = {}
    for sample in run["samples"]:
        by_name.setdefault(sample[0], []).append(sample)
    rows = []
    for name, samples in [*sorted(by_name.items()), ("Total", run["samples"])]:
        statuses = Counter(int(s[3]) for s in samples)
        rows.append(
            {
                "name": name,
                "requests": len(samples),
                "rps": len(samples) / seconds,
                **latency_row([float(s[2]) for s in samples]),
                "failures": sum(1 for s in samples if not s[4]),
                "expected_4xx": {code: statuses[code] for code in EXPECTED_4XX if statuses[code]},
                "statuses": statuses,
            }
        )
    return rows


def merged_intervals(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def max_in_flight(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def during_slow_payments(run: dict[str, Any]) -> dict[str, Any]:
    """Catalog reads and /readyz split by whether a slow payment was in flight meanwhile."""
    spans = [(s[1], s[1] + s[2] / 1000) for s in run["samples"] if s[0] == SLOW_PAY]
    windows = merged_intervals(spans)
    starts = [start for start, _ in windows]

    def overlaps(sample: list[Any]) -> bool:
        begin, end = sample[1], sample[1] + sample[2] / 1000
        index = bisect.bisect_left(starts, end) - 1  # the last window starting before it ends
        return index >= 0 and windows[index][1] > begin

    groups: dict[str, dict[bool, list[float]]] = {
        "Catalog reads": {True: [], False: []},
        "GET /readyz": {True: [], False: []},
    }
    for sample in run["samples"]:
        group = (
            "Catalog reads"
            if sample[0].startswith(CATALOG_READS)
            else "GET /readyz"
            if sample[0] == "GET /readyz"
            else None
        )
        if group:
            groups[group][overlaps(sample)].append(float(sample[2]))
    slow = sorted(s[2] for s in run["samples"] if s[0] == SLOW_PAY)
    return {
        "groups": groups,
        "slow_count": len(slow),
        "slow_p50": percentile(slow, 0.5),
        "max_in_flight": max_in_flight(spans),
        "seconds_in_flight": sum(end - start for start, end in windows),
    }


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


def report(
    outcome: dict[str, Any],
    settings: Settings,
    redis_url: str,
    load_average: tuple[float, float, float],
    total_seconds: float,
) -> int:
    """Write and print bench/results/load.md from what bench/load.py's `run_stack` returned; the
    exit status (1 if any check failed)."""
    run = outcome["run"]
    gunicorn = outcome["gunicorn"]
    audits: dict[str, tuple[bool, str]] = outcome["audits"]
    drain_problems: list[str] = outcome["drain_problems"]
    orders: dict[str, int] = outcome["orders"]
    locust_command: list[str] = outcome["locust_command"]
    # --- report ------------------------------------------------------------------------------
    measured = (
        run["stopped"] - run["started"]
        if "started" in run and "stopped" in run
        else settings.seconds
    )
    rows = endpoint_rows(run, measured)
    slow = during_slow_payments(run)
    problems: list[str] = []
    no_answer = [
        (row["name"], code, count)
        for row in rows[:-1]
        for code, count in sorted(row["statuses"].items())
        if code >= 500 or code == 0
    ]
    for name, code, count in no_answer:
        problems.append(f"{count} x {'no answer' if code == 0 else f'HTTP {code}'} on `{name}`")
    for name, messages in sorted(run["failures"].items()):
        for message, count in sorted(messages.items(), key=lambda item: -item[1])[:5]:
            problems.append(f"{count} x Locust failure on `{name}`: {message}")
    stalls = []
    slow_effective = slow["slow_count"] > 0 and slow["slow_p50"] >= 1000
    for group, split in slow["groups"].items():
        during, otherwise = latency_row(split[True]), latency_row(split[False])
        if slow_effective and during["p99"] > max(STALL_MS, 2 * otherwise["p99"]):
            stalls.append(
                f"{group} stalled while slow payments were in flight: p99 {ms(during['p99'])} ms "
                f"(otherwise {ms(otherwise['p99'])} ms)"
            )
    problems += stalls
    problems += [f"outbox: {problem}" for problem in drain_problems]
    problems += [f"`manage.py {name}`: {output}" for name, (ok, output) in audits.items() if not ok]

    machine = (
        f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average before the run "
        f"{' '.join(f'{x:.2f}' for x in load_average)}"
    )
    threads = f" x {gunicorn['threads']} threads" if gunicorn["threads"] > 1 else ""
    lines = [
        "# Load test (`make load`)",
        "",
        f"- When: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {machine}",
        f"- Command: `{settings.parameters} python -m bench.load`",
        f"- Locust: `{shlex.join(['locust', *locust_command[1:]]).replace(str(ROOT) + '/', '')}`",
        f"- Stack: gunicorn {gunicorn['workers']} {gunicorn['worker_class']} workers{threads} "
        f"(config/gunicorn.conf.py), one Celery worker (`-Q critical,default,bulk`), Redis "
        f"{redis_url}, PostgreSQL scratch database; catalog cache "
        f"{os.environ.get('CATALOG_CACHE_SECONDS') or 'default (300 s)'}",
        f"- Catalog: {settings.products:,} products imported in {outcome['import_seconds']:.1f} s; "
        f"setup (database, import, users) {outcome['setup_seconds']:.0f} s; the whole run "
        f"{total_seconds:.0f} s",
        f"- Measured: {measured:.1f} s; orders at the end: "
        + ", ".join(f"{status} {count}" for status, count in orders.items()),
        "",
        "| Endpoint | Requests | req/s | p50 ms | p95 ms | p99 ms | max ms | Failures | "
        "Expected 4xx |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        name = f"**{row['name']}**" if row["name"] == "Total" else f"`{row['name']}`"
        expected = ", ".join(f"{code}: {n}" for code, n in sorted(row["expected_4xx"].items()))
        lines.append(
            f"| {name} | {row['requests']:,} | {row['rps']:.1f} | {ms(row['p50'])} | "
            f"{ms(row['p95'])} | {ms(row['p99'])} | {ms(row['max'])} | {row['failures']} | "
            f"{expected or '-'} |"
        )
    lines += [
        "",
        "## Reads while slow payments are in flight",
        "",
        f"{slow['slow_count']} payments with the slow card ({SLOW_CARD}), p50 "
        f"{ms(slow['slow_p50'])} ms; at least one in flight for {slow['seconds_in_flight']:.1f} s "
        f"of the run, at most {slow['max_in_flight']} at once.",
    ]
    if not slow["slow_count"]:
        lines.append(
            "No payment used the slow card in this run (LOAD_SLOW_SHARE, or too short a run for "
            "the buyers), so nothing is measured here."
        )
    elif not slow_effective:
        lines.append(
            f"The slow card did not delay payments (p50 under 1 s): the test gateway "
            f"(payments/gateways/test.py) has no slow card {SLOW_CARD}, so nothing is measured "
            "here."
        )
    lines += [
        "",
        "| Requests | while a slow payment was in flight | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for group, split in slow["groups"].items():
        for in_flight in (True, False):
            figures = latency_row(split[in_flight])
            lines.append(
                f"| {group} | {'yes' if in_flight else 'no'}: {len(split[in_flight]):,} | "
                f"{ms(figures['p50'])} | {ms(figures['p95'])} | {ms(figures['p99'])} | "
                f"{ms(figures['max'])} |"
            )
    audit_lines = [
        f"- `manage.py {name}`: {'clean' if ok else 'NOT CLEAN'} ({output.splitlines()[-1]})"
        for name, (ok, output) in audits.items()
    ]
    lines += [
        "",
        "## Checks",
        "",
        f"- 5xx or no answer: {sum(n for *_, n in no_answer)}",
        f"- Locust failures (unexpected statuses): {rows[-1]['failures']}",
        f"- Stall (p99 while a slow payment is in flight over {STALL_MS:,.0f} ms and over twice "
        "the p99 otherwise): "
        + (
            "not measured" if not slow_effective else f"{len(stalls)} (below)" if stalls else "none"
        ),
        f"- Outbox drained by the worker {outcome['drain_seconds']:.1f} s after gunicorn stopped"
        + (f": {'; '.join(drain_problems)}" if drain_problems else ""),
        *audit_lines,
        "",
        f"**{'PASS' if not problems else 'FAIL'}**",
    ]
    if problems:
        lines += ["", *[f"- {problem}" for problem in problems]]
    report = "\n".join(lines) + "\n"
    REPORT.write_text(report)
    print()
    print(report)
    print(
        f"written to {REPORT.relative_to(ROOT)}; Locust's reports in {ARTEFACTS.relative_to(ROOT)}/"
    )
    return 1 if problems else 0
