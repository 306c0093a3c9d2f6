"""Crash matrix, full size: >= 20 SIGKILL trials per (backend cell, phase), plus signal trials.

Uses the same machinery as tests/reliability (``crashkit``): a real pytest harness paused at a
phase by a test-only conftest, SIGKILLed (then ``drillbook rollback``) or sent SIGINT / SIGTERM /
SIGHUP (it must revert by itself). Writes benchmarks/results/crash_matrix.md and the matrix
section of RELIABILITY.md (between the ``crash-matrix`` markers).

    python benchmarks/crash_matrix.py [--trials 20] [--signal-trials 20] [--extra-trials 10]
        [--cells local,docker,postgres,kubernetes,aws] [--cell-trials docker=4,aws=4]
        [--log FILE] [--append] [--from-log FILE ...]

Every trial is one JSON line in ``--log`` (default benchmarks/results/crash_matrix.jsonl), and the
published table, its "Runs" line included (how many trials, when, on which commit), is built
from those lines only. ``--cells`` runs only the named cells (a cell name or a backend);
``--cell-trials`` caps the trials per phase and signal for some cells (the shared backends, when
time is short); ``--append`` adds to the log instead of starting it over; ``--from-log`` runs
nothing and rebuilds the table from earlier logs. A cell of a shared backend (docker, postgres
excepted, kubernetes, aws) runs under ``flock /tmp/drillbook-<backend>.lock``, as the tests do.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import re
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "reliability"))

from _common import git_commit, header, write_result  # noqa: E402
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


#: Backends whose test resources are shared on this machine: their cells take the same lock as
#: the tests (``flock /tmp/drillbook-<backend>.lock``).
LOCKED = {"docker": "docker", "kubernetes": "k8s", "aws": "aws"}


def _lock(cell: Cell) -> Any:
    name = LOCKED.get(cell.backend)
    if name is None:
        return None
    fh = open(f"/tmp/drillbook-{name}.lock", "a")  # held for the whole cell
    fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


def run(
    cells: Sequence[Cell],
    trials: int,
    signal_trials: int,
    extra_trials: int,
    log: Path,
    cell_trials: Mapping[str, int],
    append: bool,
) -> list[TrialResult]:
    results: list[TrialResult] = []
    commit = git_commit()
    log.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="drillbook-crash-", ignore_cleanup_errors=True) as tmp,
        log.open("a" if append else "w") as fh,
    ):
        for cell in cells:
            cap = cell_trials.get(cell.name, cell_trials.get(cell.backend))
            k, s, x = (
                (trials, signal_trials, extra_trials)
                if cap is None
                else (min(trials, cap), min(signal_trials, cap), min(extra_trials, cap))
            )
            lock = _lock(cell)
            project = make_project(Path(tmp) / cell.name.replace("/", "-"), cell)
            try:
                start_target(project)
                plan = [(p, "SIGKILL", k) for p in PHASES]
                plan += [(p, sg, s) for p in PHASES for sg in ("SIGINT", "SIGTERM", "SIGHUP")]
                if cell.fault == "process.stop" or cell in NEW_CELLS:
                    plan += [(p, "SIGKILL", x) for p in EXTRA_PHASES]
                for phase, sig, n in plan:
                    for i in range(n):
                        r = run_trial(project, phase, sig)
                        r.commit = commit
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
                if lock is not None:
                    lock.close()
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


def runs_line(results: Sequence[TrialResult], logs: Sequence[str]) -> str:
    """What ran, from the logs alone: trials per cell, first and last trial, commits."""
    per_cell: dict[str, int] = defaultdict(int)
    for r in results:
        per_cell[r.cell] += 1
    stamps = sorted(r.started_at for r in results if r.started_at)
    commits = sorted({r.commit for r in results if r.commit})
    when = f"{stamps[0]} to {stamps[-1]}" if stamps else "times not logged"
    cells = ", ".join(f"{c.name} {per_cell[c.name]}" for c in CELLS if per_cell.get(c.name))
    return (
        f"{len(results)} trials ({cells}), {when}, commit {', '.join(commits) or 'not logged'}, "
        f"{sum(r.seconds for r in results) / 60:.1f} trial-min; from "
        + ", ".join(f"`{Path(x).name}`" for x in logs)
    )


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
    "Each entry: trials that passed / trials run. A trial passes when, while the harness was "
    "paused, the cell's independent check saw what the phase implies (at `intent`: the target "
    "untouched and the intent already in the ledger; at every later phase: the fault in force), "
    "and afterwards the same check saw the target healthy and no intent was left pending. "
    "Phases: `intent` (intent written, nothing injected yet), `inject` (fault injected and its "
    "state saved), `recovery` (inside the scripted recovery step), `revert` (inside revert, "
    "before it acts; the recovery step was withheld, so the fault is still in force), "
    "`mid_inject` (fault applied, state not yet saved). Cells and their independent checks: "
    "local (a supervised HTTP service; `process.kill` on one whose supervisor does not restart "
    'it; HTTP and /proc); docker (a container of the test\'s own, restart policy "no"; the '
    "Docker SDK and its port); postgres (the embedded sandbox: `postgres.destroy_data` recovered "
    "by `postgres.restore_base_backup`; psycopg); kubernetes (`k8s.isolate` recovered by "
    "`k8s.delete_network_policy` on the real kube-apiserver; the plain kubernetes client); aws "
    "(`rds.stop` recovered by `rds.restore_snapshot` with a CNAME repoint, on moto; boto3)."
)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="SIGKILL trials per cell and phase")
    ap.add_argument("--signal-trials", type=int, default=20, help="per cell, phase and signal")
    ap.add_argument("--extra-trials", type=int, default=10, help="mid_inject SIGKILL trials")
    ap.add_argument("--cells", default="", help="comma-separated cell names or backends")
    ap.add_argument("--cell-trials", default="", help="cap per cell or backend: docker=4,aws=4")
    ap.add_argument("--log", default=str(HERE / "results" / "crash_matrix.jsonl"))
    ap.add_argument("--append", action="store_true", help="add to --log, do not start it over")
    ap.add_argument("--from-log", nargs="+", default=None, help="tabulate these logs, run nothing")
    args = ap.parse_args(argv)
    caps = {
        k.strip(): int(v)
        for k, _, v in (item.partition("=") for item in args.cell_trials.split(","))
        if k.strip()
    }
    if args.from_log:
        logs = list(args.from_log)
    else:
        run(
            select(args.cells),
            args.trials,
            args.signal_trials,
            args.extra_trials,
            Path(args.log),
            caps,
            args.append,
        )
        logs = [args.log]
    results = load(logs)  # the table and its "Runs" line come from the log, nothing else
    command = "python benchmarks/crash_matrix.py " + " ".join(argv or sys.argv[1:])
    body = (
        header(
            "Crash matrix (SIGKILL + rollback; SIGINT/SIGTERM/SIGHUP revert before exit)",
            command.strip(),
            runs_line(results, logs),
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
