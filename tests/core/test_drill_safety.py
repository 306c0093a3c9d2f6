"""The engine's safety around inject and revert, in process with faults made for the test:
every fault that changes a target gets the production guard and the caps, and a revert that
does not hold is tried again until it does or the limit passes, every try on record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from drillbook.backends.base import BUILTIN_BACKENDS, Fault, Registry, Selection, get_registry
from drillbook.config import Config, SafetySettings
from drillbook.engine import Drill
from drillbook.errors import SafetyError
from drillbook.intents import IntentLedger
from drillbook.model import FaultSpec, TargetSpec


class Flip(Fault):
    """Changes its targets (the default); counts its reverts in a class-level log."""

    reverts_failing: ClassVar[int] = 0
    log: ClassVar[list[str]] = []

    def resolve(self) -> Selection:
        return Selection(chosen=("a", "b", "c"), candidates=3)

    def inject(self) -> None:
        Flip.log.append("inject")

    def verify_injected(self) -> bool:
        return True

    def revert(self) -> None:
        Flip.log.append("revert")
        if Flip.reverts_failing > 0:
            Flip.reverts_failing -= 1
            raise RuntimeError("the API said 503")

    def state(self) -> Mapping[str, Any]:
        return {"flipped": True}


class Look(Flip):
    read_only = True


def _registry() -> Registry:
    registry = Registry()
    registry.add_backend("acme", lambda settings: None)
    registry.add_fault("acme.flip", "acme", Flip)
    registry.add_fault("acme.look", "acme", Look)
    return registry


def _config(tmp_path: Path, **kw: Any) -> Config:
    safety = kw.pop("safety", SafetySettings(watchdog=False, watchdog_off_by="this test"))
    return Config(
        source="drillbook.yaml",
        workdir=tmp_path,
        state_dir=tmp_path / ".drillbook",
        reports_dir=tmp_path / "reports",
        targets={"t": TargetSpec("t", "acme", {})},
        safety=safety,
        **kw,
    )


@pytest.fixture(autouse=True)
def _fresh() -> None:
    Flip.log = []
    Flip.reverts_failing = 0


def _drill(tmp_path: Path, fault: str, **kw: Any) -> tuple[Drill, Any]:
    drill = Drill("d", _config(tmp_path, **kw), registry=_registry())
    try:
        drill.inject(FaultSpec(fault, {}, ("t",)))
    except SafetyError as exc:
        return drill, exc
    return drill, None


def test_a_fault_that_changes_its_target_is_refused_in_production(tmp_path: Path) -> None:
    drill, refused = _drill(tmp_path, "acme.flip", environment="prod", production=True)
    assert refused is not None and "production: refused" in str(refused)
    assert Flip.log == [] and IntentLedger(drill.config.intent_ledger).all() == {}
    drill.finish(refused)


def test_only_a_read_only_fault_skips_the_production_guard(tmp_path: Path) -> None:
    drill, refused = _drill(tmp_path, "acme.look", environment="prod", production=True)
    assert refused is None and Flip.log == ["inject"]
    drill.finish()


def test_the_caps_bind_every_fault_that_changes_a_target(tmp_path: Path) -> None:
    caps = SafetySettings(max_targets=2, watchdog=False, watchdog_off_by="this test")
    drill, refused = _drill(tmp_path, "acme.flip", safety=caps)
    assert refused is not None and "safety.max_targets is 2" in str(refused)
    assert Flip.log == []
    drill.finish(refused)
    drill, refused = _drill(tmp_path, "acme.look", safety=caps)
    assert refused is None
    drill.finish()


def test_no_built_in_fault_declares_itself_read_only() -> None:
    """route53.failover moves traffic, asg.suspend stops healing, fail_health_check inverts a
    check: all change state. A fault class that does not import fails here, not in a drill."""
    registry = get_registry()
    assert not set(registry.broken) & set(BUILTIN_BACKENDS), registry.broken
    assert {"route53.failover", "route53.fail_health_check", "asg.suspend"} <= set(registry.faults)
    assert {r.backend for r in registry.faults.values()} >= {"local", "docker", "aws"}
    for name, reg in registry.faults.items():
        cls = reg.factory.resolve()  # type: ignore[attr-defined]
        assert cls.read_only is False, name
        assert registry.fault_is_read_only(name) is False, name


def test_a_revert_that_fails_is_retried_until_it_holds(tmp_path: Path) -> None:
    Flip.reverts_failing = 2
    retry = SafetySettings(revert_retry_s=30, watchdog=False, watchdog_off_by="this test")
    drill, _ = _drill(tmp_path, "acme.flip", safety=retry)
    result = drill.finish()
    assert Flip.log == ["inject", "revert", "revert", "revert"]
    (rev,) = result.record["reverts"]
    assert rev["ok"] is True and rev["tries"] == 3
    tries = [e for e in result.record["timeline"] if e["kind"] == "revert_try"]
    assert [t["attempt"] for t in tries] == [1, 2]
    assert all("503" in t["detail"] for t in tries)
    ledger = IntentLedger(drill.config.intent_ledger)
    assert ledger.pending() == []
    ops = [json.loads(line) for line in ledger.archive_path.read_text().splitlines()]
    # Every try on record: two failures (numbered), then the revert that held.
    assert [(o["op"], o.get("attempt")) for o in ops[2:]] == [
        ("revert_failed", 1),
        ("revert_failed", 2),
        ("reverted", None),
    ]


def test_a_revert_that_never_holds_ends_with_still_injected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Flip.reverts_failing = 1000
    retry = SafetySettings(revert_retry_s=1.2, watchdog=False, watchdog_off_by="this test")
    drill, _ = _drill(tmp_path, "acme.flip", safety=retry)
    result = drill.finish()
    assert result.verdict.value == "error"
    (rev,) = result.record["reverts"]
    assert rev["ok"] is False and rev["tries"] >= 2
    err = capsys.readouterr().err
    assert "still injected: acme.flip on t (intent int-" in err
    assert "run drillbook rollback" in err
    assert any("still injected" in r for r in result.reasons)
    (pending,) = IntentLedger(drill.config.intent_ledger).pending()
    assert pending.status == "revert_failed"
