"""The intent ledger: a torn line costs only itself, reverted intents move to the archive, and
rollback leaves alone a fault whose run it cannot prove gone."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from drillbook.intents import Intent, IntentLedger
from drillbook.liveness import Liveness, Origin, here, liveness, pid_alive
from drillbook.rollback import rollback


def _intent(iid: str, workdir: Path, **kw: object) -> Intent:
    fields: dict[str, object] = dict(
        id=iid,
        run_id="r",
        drill="d",
        fault_type="process.stop",
        params={},
        targets=("svc",),
        config_path=None,
        workdir=str(workdir),
        environment="test",
        created_at=time.time(),
        expires_at=time.time() + 600,
    )
    fields.update(kw)
    return Intent(**fields)  # type: ignore[arg-type]


def test_after_a_torn_last_line_the_next_intent_is_pending(tmp_path: Path) -> None:
    """A harness killed mid-write leaves half a line; the next record must not be glued to it."""
    ledger = IntentLedger(tmp_path / "intents.jsonl")
    ledger.record(_intent("int-1", tmp_path))
    ledger.injected("int-1", {"pids": [1]})
    raw = ledger.path.read_bytes()
    ledger.path.write_bytes(raw[: len(raw) - 9])  # the injected line, cut mid-write
    ledger.record(_intent("int-2", tmp_path))
    ledger.injected("int-2", {"pids": [2]})
    pending = {i.id: i for i in ledger.pending()}
    assert set(pending) == {"int-1", "int-2"}
    assert pending["int-1"].status == "intended"  # its injected line is the torn one
    assert pending["int-2"].status == "injected" and pending["int-2"].state == {"pids": [2]}


def test_a_record_glued_to_a_torn_fragment_is_recovered(tmp_path: Path) -> None:
    """Ledgers written before appends started on a fresh line hold such lines."""
    path = tmp_path / "intents.jsonl"
    whole = json.dumps({"op": "intent", **_as_record(_intent("int-3", tmp_path))})
    later = json.dumps({"op": "injected", "id": "int-3", "state": {"pids": [3]}})
    path.write_text('{"op": "reverted", "id": "int-0"' + whole + later + "\n")
    (got,) = IntentLedger(path).pending()
    assert got.id == "int-3" and got.status == "injected" and got.state == {"pids": [3]}


def _as_record(intent: Intent) -> dict[str, object]:
    from dataclasses import asdict

    data = asdict(intent)
    data["targets"] = list(intent.targets)
    return data


def test_secrets_are_redacted_in_the_ledger(tmp_path: Path) -> None:
    ledger = IntentLedger(tmp_path / "intents.jsonl")
    ledger.record(_intent("int-4", tmp_path, params={"dsn": "postgresql://u:pw@h/db"}))
    assert "pw@" not in ledger.path.read_text()


def test_reverted_intents_move_to_the_archive_and_pending_ones_stay(tmp_path: Path) -> None:
    ledger = IntentLedger(tmp_path / "intents.jsonl")
    for i in range(5):
        ledger.record(_intent(f"int-{i}", tmp_path))
        ledger.injected(f"int-{i}", {"n": i})
    for i in (0, 2, 4):
        ledger.reverted(f"int-{i}", "done")
    ledger.revert_failed("int-3", "still frozen", attempt=1)
    live = [json.loads(x) for x in ledger.path.read_text().splitlines()]
    assert {r["id"] for r in live} == {"int-1", "int-3"}
    assert [i.id for i in ledger.pending()] == ["int-1", "int-3"]
    assert ledger.get("int-3").status == "revert_failed"  # type: ignore[union-attr]
    archived = ledger.archived()
    assert set(archived) == {"int-0", "int-2", "int-4"}
    assert all(i.status == "reverted" and i.state for i in archived.values())
    # The archive keeps every line: the evidence trail, in the order written.
    ops = [json.loads(x)["op"] for x in ledger.archive_path.read_text().splitlines()]
    assert ops == ["intent", "injected", "reverted"] * 3
    assert ledger.lookup("int-2").status == "reverted"  # type: ignore[union-attr]


def test_rollback_reads_only_the_live_ledger(tmp_path: Path) -> None:
    """However long the history, what rollback parses is what may be pending."""
    ledger = IntentLedger(tmp_path / "intents.jsonl")
    ledger.archive_path.write_text("{this is not json\n" * 1000)  # never parsed
    ledger.record(_intent("int-9", tmp_path))
    ledger.reverted("int-9", "done")
    said: list[str] = []
    assert rollback(ledger.path, say=said.append) == []
    assert said == ["nothing pending: no injected fault is waiting to be reverted"]
    assert ledger.path.read_text() == ""


def test_rollback_leaves_a_fault_recorded_on_another_host_until_its_ttl(tmp_path: Path) -> None:
    """A pid from another host (a CronJob's pod on a shared volume) says nothing here; neither
    "alive" nor "dead" may be read into it."""
    ledger = IntentLedger(tmp_path / "intents.jsonl")
    ledger.record(_intent("int-a", tmp_path, host="cronjob-pod-7f9", pid=os.getpid()))
    ledger.record(_intent("int-b", tmp_path, pidns="pid:[1]", pid=1))
    said: list[str] = []
    assert rollback(ledger.path, say=said.append) == []
    assert len(said) == 2 and all(line.startswith("skip int-") for line in said), said
    assert "on host cronjob-pod-7f9" in said[0] and "cannot be told from here" in said[0]
    assert "--force" in said[0]
    assert {i.id for i in ledger.pending()} == {"int-a", "int-b"}


def test_rollback_reverts_a_fault_from_another_host_once_its_ttl_passed(tmp_path: Path) -> None:
    ledger = IntentLedger(tmp_path / "intents.jsonl")
    ledger.record(
        _intent(
            "int-c",
            tmp_path,
            host="cronjob-pod-7f9",
            fault_type="no.such.fault",
            expires_at=time.time() - 1,
        )
    )
    (tmp_path / "drillbook.yaml").write_text("environment: test\nsafety: {revert_retry: 0s}\n")
    said: list[str] = []
    (outcome,) = rollback(ledger.path, say=said.append)
    # It was tried (the fault type is unknown here, so the try fails and says so).
    assert not outcome.ok and "no.such.fault" in outcome.detail
    assert any(line.startswith("still injected: no.such.fault on svc") for line in said), said


def test_a_pid_from_this_host_is_alive_or_dead_and_from_elsewhere_unknown() -> None:
    me = here()
    assert liveness(os.getpid(), me) is Liveness.ALIVE
    assert liveness(os.getpid(), Origin("another-host", me.pidns, me.boot_id)) is Liveness.UNKNOWN
    assert liveness(os.getpid(), Origin(me.host, "pid:[1]", me.boot_id)) is Liveness.UNKNOWN
    assert liveness(os.getpid(), Origin(me.host, me.pidns, "another-boot")) is Liveness.DEAD


def test_a_harness_killed_but_not_yet_reaped_counts_as_gone() -> None:
    import subprocess

    proc = subprocess.Popen(["sleep", "60"])
    try:
        assert pid_alive(proc.pid)
        proc.kill()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(") ", 1)[1][:1] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not pid_alive(proc.pid)  # a zombie: its parent (this test) has not reaped it
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("cut", [1, 20, 60])
def test_compaction_after_a_torn_line_keeps_every_pending_intent(tmp_path: Path, cut: int) -> None:
    """``cut`` 1 drops only the newline: that record is whole and stays pending."""
    ledger = IntentLedger(tmp_path / "intents.jsonl")
    ledger.record(_intent("int-x", tmp_path))
    ledger.record(_intent("int-y", tmp_path))
    raw = ledger.path.read_bytes()
    ledger.path.write_bytes(raw[: len(raw) - cut])  # int-y's line torn
    ledger.record(_intent("int-z", tmp_path))
    ledger.reverted("int-x")
    whole = cut == 1
    assert [i.id for i in ledger.pending()] == (["int-y"] if whole else []) + ["int-z"]
    assert ("int-y" in ledger.archive_path.read_text()) is not whole  # a fragment: evidence
    assert set(ledger.archived()) == {"int-x"}
