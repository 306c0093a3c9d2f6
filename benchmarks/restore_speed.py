"""Restore speed and RPO accuracy on the real sandbox (issue 3).

1. Restore speed at pgbench scale 50 (~750 MB): db_restore's RTA (destroy the primary's data,
   ``postgres.restore_base_backup`` to latest, first passing SQL probe) against the physical floor
   (a plain copy of the same base backup into place + server start + first passing probe).
   Goal: ratio <= 1.5.
2. RPO accuracy at 200 writes/s: a point-in-time restore to just before a DELETE; the ledger's
   ``lost_writes`` against an independent count taken from the writer's own acknowledgements and
   the delete's timestamps: acknowledged after the delete committed = must be lost; acknowledged
   before the delete transaction began = must survive; in between = ambiguous (reported).
   Goal: exact.

Run: ``python benchmarks/restore_speed.py [--scale 50] [--runs 3] [--rpo-runs 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import itertools
import os

from _common import header, spread, write_result

from drillbook.backends.base import Context
from drillbook.backends.postgres.faults import DeleteRows, DestroyData
from drillbook.backends.postgres.ledger import PostgresLedger
from drillbook.backends.postgres.probes import SqlProbe
from drillbook.backends.postgres.sandbox import down, up
from drillbook.backends.postgres.sandbox.control import SupervisorClient
from drillbook.backends.postgres.sandbox.nodes import node_port, pg_run, write_node_conf
from drillbook.backends.postgres.sandbox.replication import set_primary_conf, take_base_backup
from drillbook.backends.postgres.sandbox.state import (
    dsn_for_port,
    load_state,
)
from drillbook.backends.postgres.steps import RestoreBaseBackup
from drillbook.backends.postgres.target import pg_target
from drillbook.model import TargetSpec

PROBE_INTERVAL_S = 0.05
#: Passes only once the server is promoted: a hot standby still replaying could answer earlier.
WRITABLE_COUNT = "SELECT count(*) FROM pgbench_branches WHERE NOT pg_is_in_recovery()"


def _ctx(root: Path, state_dir: Path, **params: Any) -> Context:
    target = TargetSpec("pg-primary", "postgres", {"sandbox": "region-a", "root": str(root)})
    return Context(params=params, targets=(target,), workdir=root, state_dir=state_dir)


def _first_pass(probe: SqlProbe, timeout_s: float = 900.0) -> float:
    """Poll like the engine does (here every 50 ms); epoch time of the first passing probe."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        started = time.time()
        if probe.check().ok:
            return started
        time.sleep(PROBE_INTERVAL_S)
    raise RuntimeError("probe never passed")


def _count_query(root: Path) -> SqlProbe:
    return SqlProbe(_ctx(root, root / "sd", query=WRITABLE_COUNT, expected=SCALE))


SCALE = 50


def restore_run(root: Path) -> tuple[float, str]:
    """db_restore as the drill runs it: inject, restore step, first passing probe."""
    ctx = _ctx(root, root / "sd")
    probe = _count_query(root)
    fault = DestroyData(ctx)
    os.sync()  # untimed: start with no writeback pending from the previous run
    fault.inject()
    t_inject = time.time()
    detail = RestoreBaseBackup(_ctx(root, root / "sd", to="latest")).run()
    rta = _first_pass(probe) - t_inject
    return rta, detail


def floor_run(root: Path) -> float:
    """The physical floor, in the same conditions as the drill: the same kill + delete, then by
    hand a plain ``cp -a`` of the same base backup into place, recovery.signal (replay the
    archive, promote: a base backup cannot start without recovery) and a server start, to the
    first passing probe. No drillbook step, no safety checks, no bookkeeping."""
    ctx = _ctx(root, root / "sd")
    target = pg_target(ctx)
    probe = _count_query(root)
    os.sync()  # untimed, as before each restore run
    DestroyData(ctx).inject()
    t0 = time.time()
    data_dir = target.data_dir()
    subprocess.run(["cp", "-a", str(target.backup_dir()), str(data_dir)], check=True)
    write_node_conf(
        data_dir,
        target.port(),
        {"recovery_target_timeline": "latest", "recovery_target_action": "promote"},
    )
    (data_dir / "recovery.signal").touch()
    SupervisorClient(root).start("region-a")
    elapsed = _first_pass(probe) - t0
    set_primary_conf(root, "region-a")  # untimed: keep the sandbox's conf as the step leaves it
    return elapsed


def rpo_run(root: Path, rate: float) -> dict[str, Any]:
    sd = root / "sd"
    ledger = PostgresLedger(_ctx(root, sd, rate_per_s=rate))
    ledger.start()
    time.sleep(2.0)
    fault = DeleteRows(_ctx(root, sd, table="accounts", where="id <= 10"))
    fault.inject()
    t_inject = time.time()
    time.sleep(2.0)
    t_restore = time.time()
    RestoreBaseBackup(_ctx(root, sd, to="before_fault")).run()
    t_restored = time.time()
    time.sleep(0.5)
    ledger.stop()
    measure = ledger.measure(t_inject)
    fault.revert()
    # The independent count uses nothing but the writer's own timestamps and the delete's
    # client-side begin/commit times. Each write committed somewhere in [sent, acknowledged].
    # Sent after the delete's COMMIT returned and acknowledged before the restore's outage: it
    # went to the abandoned timeline, so it must be lost. Acknowledged after the outage (the
    # widest gap between acks inside the restore window): it went to the restored server. A
    # write whose [sent, acknowledged] overlaps the delete's open transaction is ambiguous.
    state = fault.state()
    began, committed = float(state["began_epoch"]), float(state["committed_epoch"])
    acks = ledger.acknowledged()
    times = [a.at for a in acks]
    window = [t for t in times if t_restore <= t <= t_restored + 0.5]
    outage_end = t_restored
    if len(window) > 1:
        outage_end = max((b - a, b) for a, b in itertools.pairwise(window))[1]
    elif window:
        outage_end = window[0]
    must_lose = sum(1 for a in acks if a.sent > committed and a.at < outage_end)
    ambiguous = sum(1 for a in acks if a.at >= began and a.sent <= committed)
    lost = measure.lost_writes
    return {
        "lost": lost,
        "independent": must_lose,
        "ambiguous": ambiguous,
        "acknowledged": measure.acknowledged,
        "exact": lost == must_lose,
        "consistent": must_lose <= lost <= must_lose + ambiguous,
        "achieved_rate": sum(1 for t in times if t < began) / max(1e-9, began - times[0]),
        "max_ack_latency_ms": 1000 * max(a.at - a.sent for a in acks),
    }


def main(argv: list[str] | None = None) -> int:
    global SCALE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rpo-runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    SCALE = args.scale
    root = Path(tempfile.mkdtemp(prefix="drillbook-bench-"))
    rtas: list[float] = []
    floors: list[float] = []
    details: list[str] = []
    rpo: list[dict[str, Any]] = []
    setup_s = 0.0
    try:
        t0 = time.monotonic()
        up(root)
        state = load_state(root)
        port = node_port(state, "region-a")
        pg_run(
            state,
            ["pgbench", "-i", "-q", "-s", str(args.scale), "-d", dsn_for_port(port)],
            timeout_s=3600,
        )
        take_base_backup(root)
        setup_s = time.monotonic() - t0
        size = sum(f.stat().st_size for f in (root / "backups" / "base").rglob("*") if f.is_file())
        print(f"setup {setup_s:.0f}s, base backup {size / 2**20:.0f} MiB", file=sys.stderr)
        for i in range(args.runs):  # alternate, so drift in machine load hits both alike
            rta, detail = restore_run(root)
            rtas.append(rta)
            details.append(detail)
            floors.append(floor_run(root))
            print(f"run {i + 1}: rta {rta:.2f}s floor {floors[-1]:.2f}s", file=sys.stderr)
        for i in range(args.rpo_runs):
            rpo.append(rpo_run(root, args.rate))
            print(f"rpo run {i + 1}: {rpo[-1]}", file=sys.stderr)
    finally:
        down(root)
    ratio = statistics.median(rtas) / statistics.median(floors)
    consistent = sum(1 for r in rpo if r["consistent"])
    unambiguous = sum(1 for r in rpo if r["ambiguous"] == 0)
    unambiguous_exact = sum(1 for r in rpo if r["exact"] and r["ambiguous"] == 0)
    cmd = "python benchmarks/restore_speed.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = header(
        "Restore speed and RPO accuracy (PostgreSQL sandbox)",
        cmd.strip(),
        f"{args.runs} restores + {args.runs} floor restores at pgbench scale {args.scale} "
        f"(base backup {size / 2**20:.0f} MiB); {args.rpo_runs} RPO runs at {args.rate:g} writes/s",
    )
    text += (
        "\nRTA is measured as the drill measures it: from the moment the destroy-data fault "
        "returned (server SIGKILLed, data folder deleted) through `postgres.restore_base_backup "
        "to: latest` (copy, WAL replay from the archive, promotion) to the first passing SQL "
        "probe, polled every 50 ms. The floor is the same fault, then by hand a plain `cp -a` "
        "of the same base backup into place, `recovery.signal` (a base backup cannot start "
        "without replaying WAL) and a server start, to the first passing probe. Restores and "
        "floors alternate so drifting machine load hits both alike, and each starts after an "
        "untimed `sync` so no run pays for the previous one's writeback.\n\n"
        "| measure | median | spread | goal | met |\n|---|---|---|---|---|\n"
        f"| db_restore RTA (s) | {statistics.median(rtas):.2f} | {spread(rtas)} | | |\n"
        f"| floor: cp -a + start (s) | {statistics.median(floors):.2f} | {spread(floors)} | | |\n"
        f"| ratio RTA / floor | {ratio:.2f} | | <= 1.5 | {'yes' if ratio <= 1.5 else 'no'} |\n"
        f"| RPO runs without an ambiguous write: lost_writes == independent count | "
        f"{unambiguous_exact}/{unambiguous} | | all | "
        f"{'yes' if unambiguous_exact == unambiguous else 'no'} |\n"
        f"| all RPO runs: lost_writes within [independent, independent + ambiguous] | "
        f"{consistent}/{len(rpo)} | | all | {'yes' if consistent == len(rpo) else 'no'} |\n\n"
        "RPO runs: the writer commits one row per transaction at "
        f"{args.rate:g}/s; a DELETE runs mid-stream; 2 s later a point-in-time restore goes back "
        "to just before the DELETE's transaction; the ledger reports `lost_writes`. The "
        "independent count uses only the writer's own timestamps (each write committed somewhere "
        "between sending its INSERT and its acknowledgement) and the DELETE's client-side "
        "begin/commit times: sent after the DELETE committed and acknowledged before the "
        "restore's outage = must be lost; [sent, acknowledged] overlapping the DELETE's open "
        "transaction = ambiguous (its commit may fall on either side), so the ledger must lie in "
        "[independent, independent + ambiguous].\n\n"
        "| run | acknowledged | lost_writes (ledger) | independent (must be lost) | "
        "ambiguous acks | within bounds | achieved writes/s | max ack latency (ms) |\n"
        "|---|---|---|---|---|---|---|---|\n"
        + "".join(
            f"| {i + 1} | {r['acknowledged']} | {r['lost']} | {r['independent']} | "
            f"{r['ambiguous']} | {'yes' if r['consistent'] else 'NO'} | "
            f"{r['achieved_rate']:.0f} | {r['max_ack_latency_ms']:.0f} |\n"
            for i, r in enumerate(rpo)
        )
        + f"\nSetup (sandbox up, pgbench -i, base backup): {setup_s:.0f}s. "
        f"Last restore: {details[-1] if details else 'n/a'}.\n"
    )
    print(text)
    if not args.no_write:
        write_result("restore", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
