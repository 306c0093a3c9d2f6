"""Crash matrix, full size: >= 20 SIGKILL trials per (backend cell, phase), plus signal trials.

Uses the same machinery as tests/reliability (``crashkit``): a real pytest harness paused at a
phase by a test-only conftest, SIGKILLed (then ``drillbook rollback``) or sent SIGINT / SIGTERM /
SIGHUP (it must revert by itself). Writes benchmarks/results/crash_matrix.md and the matrix
section of RELIABILITY.md (between the ``crash-matrix`` markers).

    python benchmarks/crash_matrix.py [--trials 20] [--signal-trials 20] [--extra-trials 10]
        [--cells local,docker,postgres,kubernetes,aws] [--log FILE] [--from-log FILE ...]

``--cells`` runs only the named cells (a cell name or a backend); ``--from-log`` runs nothing and
rebuilds the table from the JSON lines of earlier runs (e.g. cells run side by side).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "reliability"))

from _common import header, write_result  # noqa: E402
from crashkit import (  # noqa: E402
    CELLS,
    EXTRA_PHASES,
    NEW_CELLS,
    PHASES,
    Cell,
    TrialResult,
    make_project,
    run_trial,
    start_target,
    stop_target,
)

__all__ = ["main"]

BEGIN, END = "<!-- crash-matrix:begin -->", "<!-- crash-matrix:end -->"


def run(
    cells: Sequence[Cell], trials: int, signal_trials: int, extra_trials: int, log: Path
) -> list[TrialResult]:
    results: list[TrialResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="drillbook-crash-", ignore_cleanup_errors=True) as tmp,
        log.open("w") as fh,
    ):
        for cell in cells:
            project = make_project(Path(tmp) / cell.name.replace("/", "-"), cell)
            start_target(project)
            try:
                plan = [(p, "SIGKILL", trials) for p in PHASES]
                plan += [
                    (p, s, signal_trials) for p in PHASES for s in ("SIGINT", "SIGTERM", "SIGHUP")
                ]
                if cell.fault == "process.stop" or cell in NEW_CELLS:
                    plan += [(p, "SIGKILL", extra_trials) for p in EXTRA_PHASES]
                for phase, sig, n in plan:
                    for i in range(n):
                        r = run_trial(project, phase, sig)
                        results.append(r)
                        fh.write(json.dumps(r.__dict__, default=str) + "\n")
                        fh.flush()
                        print(
                            f"[{cell.name} {phase} {sig} {i + 1}/{n}] {'ok' if r.ok else 'FAIL'} "
                            f"{r.seconds:.1f}s {'' if r.ok else r.detail[:200]}",
                            file=sys.stderr,
                        )
            finally:
                stop_target(project)
    return results


def load(paths: Sequence[str]) -> list[TrialResult]:
    """Trials recorded by earlier runs (one JSON object per line, as ``run`` writes them)."""
    out: list[TrialResult] = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                out.append(TrialResult(**json.loads(line)))
    return out


def select(names: str) -> list[Cell]:
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    cells = [c for c in CELLS if not wanted or c.name in wanted or c.backend in wanted]
    if wanted and not cells:
        raise SystemExit(f"no cell matches {names!r}; cells: {[c.name for c in CELLS]}")
    return cells


def timing(results: Sequence[TrialResult]) -> str:
    """Per cell: trials, wall time, median seconds per trial (a trial includes the harness's own
    start-up, the pause, the signal, rollback if any and the independent check)."""
    lines = ["| cell | trials | minutes | median s/trial |", "|---|---|---|---|"]
    for cell in CELLS:
        secs = [r.seconds for r in results if r.cell == cell.name]
        if secs:
            lines.append(
                f"| {cell.name} | {len(secs)} | {sum(secs) / 60:.1f} | "
                f"{statistics.median(secs):.2f} |"
            )
    return "\n".join(lines)


def table(results: Sequence[TrialResult]) -> str:
    cells: dict[tuple[str, str, str], list[TrialResult]] = defaultdict(list)
    for r in results:
        cells[(r.cell, r.phase, r.signal)].append(r)
    phases = [*PHASES, *EXTRA_PHASES]
    lines = [
        "| cell | signal | " + " | ".join(phases) + " |",
        "|---|---|" + "---|" * len(phases),
    ]
    for cell in CELLS:
        for sig in ("SIGKILL", "SIGINT", "SIGTERM", "SIGHUP"):
            row = []
            for phase in phases:
                rs = cells.get((cell.name, phase, sig), [])
                if not rs:
                    row.append("-")
                    continue
                ok = sum(r.ok for r in rs)
                row.append(f"{ok}/{len(rs)}" + ("" if ok == len(rs) else " **FAIL**"))
            lines.append(f"| {cell.name} | {sig} | " + " | ".join(row) + " |")
    failures = [r for r in results if not r.ok]
    if failures:
        lines += ["", "Failed trials (first per cell and phase):", ""]
        seen: set[tuple[str, str, str]] = set()
        for r in failures:
            key = (r.cell, r.phase, r.signal)
            if key in seen:
                continue
            seen.add(key)
            note = (" — rollback said: " + r.notes[0][:200].replace("\n", " ")) if r.notes else ""
            lines.append(f"- {r.cell} {r.phase} {r.signal}: {r.detail[:300]}{note}")
    return "\n".join(lines)


DESCRIPTION = (
    "Each entry: trials where the target was healthy afterwards, no intent was left pending and "
    "(postgres, kubernetes, aws) the independent check saw the fault while the harness was "
    "paused at `inject` or `recovery` / trials run. Phases: `intent` (intent written, nothing "
    "injected yet), `inject` (fault injected and its state saved), `recovery` (inside the "
    "scripted recovery step), `revert` (inside revert, before it acts), `mid_inject` (fault "
    "applied, state not yet saved). Cells: local (supervised HTTP service); docker (sandbox "
    "container on the real engine); postgres (the embedded sandbox: `postgres.destroy_data` "
    "recovered by `postgres.restore_base_backup`, checked with psycopg on the server); "
    "kubernetes (`k8s.isolate` recovered by `k8s.delete_network_policy` on the real "
    "kube-apiserver, checked with the plain kubernetes client); aws (`rds.stop` recovered by "
    "`rds.restore_snapshot` with a CNAME repoint, on moto, checked with boto3)."
)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="SIGKILL trials per cell and phase")
    ap.add_argument("--signal-trials", type=int, default=20, help="per cell, phase and signal")
    ap.add_argument("--extra-trials", type=int, default=10, help="mid_inject SIGKILL trials")
    ap.add_argument("--cells", default="", help="comma-separated cell names or backends")
    ap.add_argument("--log", default="/tmp/drillbook-crash-matrix.jsonl")
    ap.add_argument("--from-log", nargs="+", default=None, help="tabulate these logs, run nothing")
    args = ap.parse_args(argv)
    started = time.monotonic()
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.from_log:
        results = load(args.from_log)
        minutes = sum(r.seconds for r in results) / 60
        how = f"{len(results)} trials from {len(args.from_log)} log(s), {minutes:.1f} trial-min"
    else:
        cells = select(args.cells)
        results = run(cells, args.trials, args.signal_trials, args.extra_trials, Path(args.log))
        minutes = (time.monotonic() - started) / 60
        how = f"{len(results)} trials in {minutes:.1f} min (load average at the start {load_start})"
    command = "python benchmarks/crash_matrix.py " + " ".join(argv or sys.argv[1:])
    body = (
        header(
            "Crash matrix (SIGKILL + rollback; SIGINT/SIGTERM/SIGHUP revert before exit)",
            command.strip(),
            f"{how}: {args.trials} SIGKILL per cell and phase, {args.signal_trials} per signal, "
            f"{args.extra_trials} mid_inject",
        )
        + "\n"
        + DESCRIPTION
        + "\n\n"
        + table(results)
        + "\n\n"
        + timing(results)
        + "\n"
    )
    write_result("crash_matrix", body)
    reliability = REPO / "RELIABILITY.md"
    if reliability.exists():
        text = reliability.read_text()
        if BEGIN in text and END in text:
            text = re.sub(
                re.escape(BEGIN) + ".*?" + re.escape(END),
                lambda _: f"{BEGIN}\n{body}\n{END}",
                text,
                flags=re.S,
            )
            reliability.write_text(text)
    return 0 if all(r.ok for r in results if r.phase in PHASES) else 1


if __name__ == "__main__":
    raise SystemExit(main())
