"""Safety checks that refuse before anything is touched, and guards that abort and revert.
The intent ledger's own tests are in test_ledger.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drillbook.backends.base import Selection
from drillbook.config import Config, SafetySettings, is_production_name
from drillbook.errors import SafetyError
from drillbook.intents import IntentLedger
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
    check_environment(cfg(environment="prod", production=True), read_only=True)


def test_blast_radius_caps() -> None:
    c = cfg(safety=SafetySettings(max_targets=2, max_percent=50))
    check_blast_radius(Selection(("a", "b"), 4), c, fault_type="x")
    with pytest.raises(SafetyError, match="max_targets is 2"):
        check_blast_radius(Selection(("a", "b", "c"), 10), c, fault_type="x")
    with pytest.raises(
        SafetyError, match=r"2 of 3 candidates selected \(67%\), safety.max_percent is 50%"
    ):
        check_blast_radius(Selection(("a", "b"), 3), c, fault_type="x")
    with pytest.raises(SafetyError, match="matched nothing"):
        check_blast_radius(Selection((), 3), c, fault_type="x")
    check_blast_radius(Selection(("a", "b", "c"), 3), c, read_only=True, fault_type="x")


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
