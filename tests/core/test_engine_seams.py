"""The drill core names no feature package: what it needs from one comes through
:mod:`drillbook.seams`, wired in by :mod:`drillbook.features` (the plugin and the runner)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_import_graph import import_graph

from drillbook.config import Config
from drillbook.engine import Drill
from drillbook.features import wired_seams
from drillbook.seams import Seams

#: engine.py and the parts beside it (see its module docstring).
CORE = {
    "drillbook.engine",
    "drillbook.drillstate",
    "drillbook.sampling",
    "drillbook.watchdog_pool",
    "drillbook.target_locks",
    "drillbook.rpo_ledger",
    "drillbook.recovery_steps",
    "drillbook.alert_drill",
    "drillbook.reverting",
    "drillbook.observers",
    "drillbook.scenario_prep",
    "drillbook.record",
    "drillbook.record_writer",
    "drillbook.seams",
}
FEATURES = ("drillbook.report", "drillbook.runbook", "drillbook.evidence", "drillbook.features")


def test_the_core_imports_no_feature_package() -> None:
    graph = import_graph()
    assert set(graph) >= CORE
    for module in sorted(CORE):
        bad = sorted(
            dep
            for dep in graph[module]
            if dep.startswith(FEATURES)
            or (dep.startswith("drillbook.backends.") and dep != "drillbook.backends.base")
        )
        assert not bad, f"{module} imports {bad}: give it a seam in drillbook.seams"


def test_features_wire_every_seam() -> None:
    seams = wired_seams()
    for name in Seams.__dataclass_fields__:
        assert getattr(seams, name) is not None, name
    # Each loader really loads its feature (the monitoring results and the progress line need
    # no third-party client at import time).
    assert seams.progress is not None and callable(seams.progress())
    assert seams.team is not None and callable(seams.team().notify)


def test_a_policy_without_its_provider_is_refused_not_judged(tmp_path: Path) -> None:
    """Without the policy's RTO/RPO a drill must not be judged as if it had none."""
    from drillbook.model import Objectives

    config = Config(source="test", workdir=tmp_path, state_dir=tmp_path / ".drillbook")
    policy = {"arn": "arn:aws:resiliencehub:us-east-1:1:resiliency-policy/x", "disruption": "AZ"}
    drill = Drill("unwired", config, objectives=Objectives(resiliency_policy=policy))
    with pytest.raises(Exception, match="no resiliency-policy provider"):
        drill.steady_state()
    drill.finish()


def test_history_does_not_import_the_report_package() -> None:
    """The report package reads history; history reads journals through drillbook.journaldoc,
    so the two packages do not import each other back."""
    graph = import_graph()
    for module in ("drillbook.history", "drillbook.history_pg", "drillbook.journaldoc"):
        bad = sorted(d for d in graph[module] if d.startswith("drillbook.report"))
        assert not bad, f"{module} imports {bad}"


def test_the_loaders_import_no_feature_package() -> None:
    """Scenario and config loading sit below every feature: the control ids a scenario may name
    come from the catalog leaf (drillbook.controlcatalog), not from the evidence package."""
    # The one exception ARCHITECTURE.md names: the runbook-drift check, a stdlib-only leaf in a
    # package whose __init__ imports nothing.
    leaves = {"drillbook.runbook.drift"}
    graph = import_graph()
    for leaf in leaves:
        assert not [d for d in graph[leaf] if d.startswith("drillbook")], leaf
    for module in ("drillbook.config", "drillbook.yamlload", "drillbook.scenario"):
        bad = sorted(d for d in graph[module] if d.startswith(FEATURES) and d not in leaves)
        assert not bad, f"{module} imports {bad}"
