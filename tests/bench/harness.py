"""Benchmark harness: ``python -m tests.bench.harness [name ...]``.

Every ``tests/bench/bench_<name>.py`` exposes ``run(report: Reporter) -> None`` and records figures with
``report.figure(...)``. Each figure is measured beside its baseline in the same run on the same
machine; the ratio (value / baseline) is what is compared with the goal. The harness prints a table
and appends one JSON object per figure to ``bench-results.jsonl`` at the repo root:
``{"bench", "metric", "value", "unit", "baseline", "ratio", "goal", ...}``.
Benchmarks never fail on a wall-clock number; a benchmark that raises is reported and the exit code is 1.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Figure", "Reporter", "main"]

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results.jsonl"


@dataclass
class Figure:
    bench: str
    metric: str
    value: float
    unit: str
    baseline: float | None
    ratio: float | None
    goal: float | None
    note: str = ""
    higher_is_better: bool = True
    met: bool | None = None
    ts: float = field(default_factory=time.time)


class Reporter:
    """Collects figures for one benchmark module."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.figures: list[Figure] = []

    def figure(
        self,
        metric: str,
        value: float,
        unit: str,
        baseline: float | None = None,
        goal: float | None = None,
        note: str = "",
        higher_is_better: bool = True,
    ) -> Figure:
        """Record ``value`` beside ``baseline``; ``goal`` is the target ratio value/baseline.

        With ``higher_is_better=False`` (latencies, overheads) the goal is met when ratio <= goal.
        """
        ratio = value / baseline if baseline else None
        met = None
        if goal is not None and ratio is not None:
            met = ratio >= goal if higher_is_better else ratio <= goal
        fig = Figure(self.bench, metric, float(value), unit, baseline, ratio, goal, note, higher_is_better, met)
        self.figures.append(fig)
        return fig


def _discover(names: list[str]) -> list[str]:
    available = sorted(p.stem[len("bench_"):] for p in Path(__file__).parent.glob("bench_*.py"))
    if not names:
        return available
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
    return names


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.3f}" if abs(x) < 100 else f"{x:,.0f}"


def _print_table(figures: list[Figure]) -> None:
    header = ("bench", "metric", "value", "unit", "baseline", "ratio", "goal", "met")
    rows = [
        (f.bench, f.metric, _fmt(f.value), f.unit, _fmt(f.baseline), _fmt(f.ratio),
         ("≥ " if f.higher_is_better else "≤ ") + _fmt(f.goal) if f.goal is not None else "-",
         {True: "yes", False: "NO", None: "-"}[f.met])
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    for f in figures:
        if f.note:
            print(f"  [{f.bench}/{f.metric}] {f.note}")


def main(argv: list[str]) -> int:
    failed: list[str] = []
    figures: list[Figure] = []
    for name in _discover(argv):
        print(f"== bench {name}", flush=True)
        reporter = Reporter(name)
        try:
            module: Any = importlib.import_module(f"tests.bench.bench_{name}")
            module.run(reporter)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        figures.extend(reporter.figures)
        with RESULTS.open("a") as fh:
            for f in reporter.figures:
                fh.write(json.dumps(asdict(f)) + "\n")
    print()
    _print_table(figures)
    if failed:
        print(f"\nbenchmarks that raised: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
