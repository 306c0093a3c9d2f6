"""Rollback from the ledger on disk never restores a redacted value: a fault whose saved state
lost a value to redaction (a secret-looking key) is refused by name, not reverted with ``***``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

import drillbook.rollback as rollback_mod
from drillbook.backends.base import Fault, Registry, Selection
from drillbook.config import Config, SafetySettings
from drillbook.intents import Intent, IntentLedger
from drillbook.model import TargetSpec


class Restore(Fault):
    """Saves a setting at inject; revert writes the saved value back."""

    restored: ClassVar[list[Any]] = []

    def resolve(self) -> Selection:
        return Selection(("svc",), 1)

    def plan(self) -> str:
        return "change the setting of svc"

    def inject(self) -> None:
        return None

    def verify_injected(self) -> bool:
        return True

    def revert(self) -> None:
        Restore.restored.append(dict(self._state))

    def verify_reverted(self) -> bool:
        return True

    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    reg = Registry()
    reg.add_backend("test", lambda settings: None, "test")
    reg.add_fault("test.restore", "test", Restore, help="")
    monkeypatch.setattr(rollback_mod, "get_registry", lambda: reg)
    Restore.restored = []
    return reg


def _record(tmp_path: Path, state: dict[str, Any]) -> IntentLedger:
    ledger = IntentLedger(tmp_path / "intents.jsonl")
    intent = Intent(
        id="int-1",
        run_id="r",
        drill="d",
        fault_type="test.restore",
        params={},
        targets=("svc",),
        config_path=None,
        workdir=str(tmp_path),
        environment="test",
        created_at=time.time(),
        expires_at=time.time() - 1,  # expired: rollback may act on it
        plan="set svc's setting back by hand",
    )
    ledger.record(intent)
    ledger.injected(intent.id, state)
    return ledger


def _config(tmp_path: Path) -> Config:
    return Config(
        source="test",
        workdir=tmp_path,
        state_dir=tmp_path / ".drillbook",
        targets={"svc": TargetSpec("svc", "test", {})},
        safety=SafetySettings(revert_retry_s=0),
    )


def test_a_state_that_lost_a_value_to_redaction_is_refused_by_name(
    tmp_path: Path, registry: Registry
) -> None:
    ledger = _record(tmp_path, {"setting": "old", "nested": {"api_token": "t0ps3cret"}})
    assert "t0ps3cret" not in ledger.path.read_text()  # the ledger holds no secret
    (outcome,) = rollback_mod.rollback(ledger.path, config=_config(tmp_path), say=lambda _l: None)
    assert not outcome.ok
    assert "nested.api_token was redacted" in outcome.detail
    assert "set svc's setting back by hand" in outcome.detail
    assert Restore.restored == []  # nothing restored from '***'
    assert [i.id for i in ledger.pending()] == ["int-1"]  # still owed a revert


def test_a_state_without_secret_keys_is_reverted(tmp_path: Path, registry: Registry) -> None:
    ledger = _record(tmp_path, {"setting": "old", "passes": 3})
    (outcome,) = rollback_mod.rollback(ledger.path, config=_config(tmp_path), say=lambda _l: None)
    assert outcome.ok, outcome.detail
    assert Restore.restored == [{"setting": "old", "passes": 3}]
    assert ledger.pending() == []
