"""``pytest --drill-gameday``: the plugin hands manual steps to the GameDay console; without a
terminal it says to answer them, and ``--drill-answer`` still answers them (CI)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CONFIG = """\
environment: test
defaults: {probe_interval: 50ms, stable_for: 300ms, probe_timeout: 1s}
targets:
  svc:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
    port: auto
    restart: always
    restart_delay: 300ms
"""

SCENARIO = """\
id: svc_gameday
objectives: {rto: 20s, severity: P2}
fault: {type: process.kill, target: svc, signal: KILL}
probes:
  - {name: health, type: http, target: svc}
recovery:
  - {kind: manual, name: page the owner, instruction: "Page the service owner."}
"""

SCENARIO_TEST = """\
def test_scenario(drill_scenario, drill):
    drill.run(drill_scenario)
"""


def run(pytester: pytest.Pytester, *args: str) -> dict:  # type: ignore[type-arg]
    """pytest in its own session: no controlling terminal, as in CI."""
    proc = pytester.popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--drill-gameday", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    proc.communicate(timeout=300)
    data: dict = json.loads((pytester.path / "reports/latest/journal.json").read_text())  # type: ignore[type-arg]
    return data["drills"][0]


def test_drill_gameday_option(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", drillbook=CONFIG)
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "svc_gameday.yaml").write_text(SCENARIO)
    pytester.makepyfile(test_scenarios=SCENARIO_TEST)
    drill = run(pytester)
    assert drill["verdict"] == "failed"
    assert "a GameDay manual step needs a terminal" in drill["reasons"][0]
    drill = run(pytester, "--drill-answer", "*=done")
    assert drill["verdict"] == "passed"
    assert drill["steps"][0]["result"] == "done"
