"""Shared bits for the benchmarks: machine description, percentiles, results-file writing.

Every results section carries the same header (machine, date, command, runs) so RESULTS.md can be
read without knowing how it was made.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "RESULTS_DIR",
    "bench_config",
    "header",
    "machine",
    "percentile",
    "spread",
    "write_result",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Every benchmark measures the drillbook of the tree it sits in, and so do the processes it starts
# (servers, drills), not whichever drillbook happens to be installed.
_SRC = str(Path(__file__).resolve().parent.parent / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
if _SRC not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p)


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) // 1024 // 1024} GiB RAM"
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}){mem}, "
        f"Python {platform.python_version()}"
    )


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): no interpolation, so p99 of 50 values is the max-ish
    observed value rather than an invented one."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"min {values[0]:.4g} = max"
    return (
        f"min {min(values):.4g}, max {max(values):.4g}, stdev {statistics.stdev(values):.3g}, "
        f"IQR {percentile(values, 25):.4g}..{percentile(values, 75):.4g}"
    )


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def header(title: str, command: str, runs: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"## {title}\n\n"
        f"- Machine: {machine()}\n"
        f"- Date: {now} (drillbook commit {git_commit()})\n"
        f"- Command: `{command}`\n"
        f"- Runs: {runs}\n"
        f"- Load average at the end (other work on this shared machine): {load()}\n"
    )


def write_result(name: str, text: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.md"
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return path


def bench_config(workdir: Path, *, interval: float, probe_timeout: float, stable_for: float) -> Any:
    """The drillbook Config the engine benchmarks drive: one ``bench`` target on a ``bench``
    backend the benchmark registers itself, state and reports under ``workdir``."""
    from drillbook.config import Config, Defaults, SafetySettings
    from drillbook.model import TargetSpec

    return Config(
        source="benchmark",
        workdir=workdir,
        targets={"bench": TargetSpec("bench", "bench", {})},
        safety=SafetySettings(max_targets=1, max_percent=100, fault_ttl_s=300.0),
        defaults=Defaults(
            probe_interval_s=interval,
            probe_timeout_s=probe_timeout,
            stable_for_s=stable_for,
            timeout_s=60,
        ),
        reports_dir=workdir / "reports",
        state_dir=workdir / ".drillbook",
    )
