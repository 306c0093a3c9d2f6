"""Safety checks that refuse before anything is touched, and guards that abort and revert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drillbook.backends.base import Selection
from drillbook.config import Config, SafetySettings, is_production_name
from drillbook.errors import SafetyError
from drillbook.intents import Intent, IntentLedger
from drillbook.safety import check_blast_radius, check_environment


def cfg(**kw: object) -> Config:
    return Config(source="drillbook.yaml", workdir=Path("."), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", ["production", "prod", "eu-prod", "prod-eu-1", "PRD", "live", "shop_production"]
)
def test_production_names(name: str) -> None:
    assert is_production_name(name)


@pytest.mark.parametrize("name", ["sandbox", "staging", "product-demo", "preprod", "dev"])
def test_non_production_names(name: str) -> None:
    assert not is_production_name(name)


def test_production_needs_the_file_and_the_flag() -> None:
    with pytest.raises(SafetyError, match="allow_production: true"):
        check_environment(cfg(environment="prod", production=True))
    with pytest.raises(SafetyError, match="pass --drill-allow-production"):
        check_environment(cfg(environment="prod", production=True, allow_production=True))
    check_environment(
        cfg(environment="prod", production=True, allow_production=True, cli_allow_production=True)
    )
    check_environment(cfg(environment="prod", production=True), destructive=False)


def test_blast_radius_caps() -> None:
    c = cfg(safety=SafetySettings(max_targets=2, max_percent=50))
    check_blast_radius(Selection(("a", "b"), 4), c, destructive=True, fault_type="x")
    with pytest.raises(SafetyError, match="max_targets is 2"):
        check_blast_radius(Selection(("a", "b", "c"), 10), c, destructive=True, fault_type="x")
    with pytest.raises(
        SafetyError, match=r"2 of 3 candidates selected \(67%\), safety.max_percent is 50%"
    ):
        check_blast_radius(Selection(("a", "b"), 3), c, destructive=True, fault_type="x")
    with pytest.raises(SafetyError, match="matched nothing"):
        check_blast_radius(Selection((), 3), c, destructive=True, fault_type="x")
    check_blast_radius(Selection(("a", "b", "c"), 3), c, destructive=False, fault_type="x")


def _intent(iid: str, workdir: Path, **params: str) -> Intent:
    return Intent(
        id=iid,
        run_id="r",
        drill="d",
        fault_type="process.stop",
        params=params,
        targets=("svc",),
        config_path=None,
        workdir=str(workdir),
        environment="test",
        created_at=0,
        expires_at=1,
    )


def test_intent_ledger_survives_a_torn_line_and_tracks_status(tmp_path: Path) -> None:
    ledger = IntentLedger(tmp_path / "intents.jsonl")
    ledger.record(_intent("int-1", tmp_path, dsn="postgresql://u:pw@h/db"))
    ledger.injected("int-1", {"pids": [1]})
    with open(ledger.path, "a") as fh:
        fh.write('{"op": "reverted", "id": "int-1"')  # a crash mid-write
    (pending,) = ledger.pending()
    assert pending.status == "injected" and pending.state == {"pids": [1]}
    assert "pw@" not in ledger.path.read_text()  # secrets are redacted even here
    with open(ledger.path, "a") as fh:
        fh.write("\n")
    ledger.reverted("int-1", "done")
    assert ledger.pending() == []
    assert [json.loads(x)["op"] for x in ledger.path.read_text().splitlines() if x.endswith("}")][
        -1
    ] == "reverted"


def test_ledger_lines_not_waited_for_are_readable_at_once_and_synced_on_another_thread(
    tmp_path: Path, fsync_threads: list[str]
) -> None:
    """``intent`` is fsynced before record() returns; ``injected`` and ``reverted`` with
    wait_for_disk=False are in the file for any reader at once, their fsync on a thread."""
    import threading

    synced = fsync_threads
    ledger = IntentLedger(tmp_path / "intents.jsonl")
    main = threading.current_thread().name
    ledger.record(_intent("int-2", tmp_path))
    assert synced == [main]
    ledger.injected("int-2", {"pids": [7]}, wait_for_disk=False)
    reader = IntentLedger(ledger.path)  # another process would see the same bytes
    got = reader.get("int-2")
    assert got is not None and got.status == "injected" and got.state == {"pids": [7]}
    ledger.reverted("int-2", "done", wait_for_disk=False)
    assert reader.pending() == []
    for t in threading.enumerate():
        if t.name == "drillbook-ledger-sync":
            t.join(10)
    assert synced[0] == main and synced[1:] == ["drillbook-ledger-sync"] * 2


GUARDED = """\
environment: test
defaults: {probe_interval: 50ms, stable_for: 300ms, probe_timeout: 500ms}
targets:
  svc:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
    port: auto
    restart: never
"""


def test_a_tripped_guard_aborts_and_reverts(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", drillbook=GUARDED)
    (pytester.path / "scenarios").mkdir()
    # The guard watches the same service: freezing it trips the guard, which must abort and revert.
    (pytester.path / "scenarios" / "g.yaml").write_text(
        "id: guarded\nobjectives: {rto: 1m}\ntimeout: 1m\n"
        "fault: {type: process.stop, target: svc}\n"
        "probes:\n  - {name: health, type: http, target: svc, timeout: 200ms}\n"
        "guards:\n  - {probe: {name: budget, type: http, target: svc, timeout: 200ms}, max_failures: 3}\n"
        "recovery:\n  - {kind: automatic}\n"
    )
    pytester.makepyfile(
        test_s="def test_scenario(drill_scenario, drill):\n    drill.run(drill_scenario)\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    doc = json.loads((pytester.path / "reports" / "latest" / "journal.json").read_text())
    (d,) = doc["drills"]
    assert d["verdict"] == "aborted"
    assert "guard guard:budget failed 3 times" in d["reasons"][0]
    assert d["guards"][0]["tripped"] is True
    assert d["reverts"][0]["ok"] is True
    ledger = IntentLedger(pytester.path / ".drillbook" / "intents.jsonl")
    assert ledger.pending() == []
