"""Alert drills through the pytest plugin (pytester), on the real Prometheus and Alertmanager:
the guard aborts and reverts on an unexpected critical alert; a drill meant to fail (expect:
failed) passes its test when it fails as meant, and fails it otherwise; an acknowledgement by
--drill-answer is timed."""

from __future__ import annotations

import json
from typing import Any

import pytest

CONFIG = """\
environment: test
defaults: {probe_interval: 100ms, stable_for: 300ms, probe_timeout: 1s}
targets:
  svc:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
    port: auto
    restart: never
"""

TEST = """\
def test_scenario(drill_scenario, drill) -> None:
    drill.run(drill_scenario)
"""

GUARDED = """\
id: guarded
objectives: {rto: 1m, severity: P1}
timeout: 1m
fault: {type: process.kill, target: svc}
probes: [{name: health, type: http, target: svc}]
alerts:
  scrape: [svc]
  expect: [{name: DrillbookHighErrorRate, labels: {target: svc}, notify: false}]
  targets: {tta: 40s}
guards:
  - probe: {name: quiet, type: alerts.quiet, labels: {target: svc}}
recovery: [{kind: scripted, type: process.start, target: svc}]
"""

ACKED = """\
id: acked
objectives: {rto: 1m, severity: P1}
timeout: 1m
expect: EXPECT
fault: {type: process.kill, target: svc}
probes: [{name: health, type: http, target: svc}]
alerts:
  scrape: [svc]
  expect: [{name: DrillbookServiceDown, labels: {target: svc}, ack: answer}]
  targets: {tta: 40s, ttn: 40s, ttack: 40s}
recovery: [{kind: scripted, type: process.start, target: svc}]
"""


def project(pytester: pytest.Pytester, scenario: str) -> pytest.Pytester:
    pytester.makefile(".yaml", drillbook=CONFIG)
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "s.yaml").write_text(scenario)
    pytester.makepyfile(test_alert_project=TEST)
    return pytester


def drill_record(pytester: pytest.Pytester) -> dict[str, Any]:
    data = json.loads((pytester.path / "reports" / "latest" / "journal.json").read_text())
    record: dict[str, Any] = data["drills"][0]
    return record


def test_an_unexpected_critical_alert_aborts_and_reverts(
    pytester: pytest.Pytester, monitoring: dict[str, str]
) -> None:
    project(pytester, GUARDED)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    record = drill_record(pytester)
    assert record["verdict"] == "aborted"
    assert "guard guard:quiet" in record["reasons"][0]
    assert record["reverts"] and record["reverts"][0]["ok"] is True
    guard_fail = [
        e for e in record["timeline"] if e.get("probe") == "guard:quiet" and not e.get("ok")
    ]
    assert "DrillbookServiceDown" in guard_fail[0]["detail"]


@pytest.mark.parametrize("expect", ["passed", "failed"])
def test_ack_by_answer_is_timed_and_expect_decides_the_test(
    pytester: pytest.Pytester, monitoring: dict[str, str], expect: str
) -> None:
    project(pytester, ACKED.replace("EXPECT", expect))
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--drill-answer", "ack DrillbookServiceDown=paged and on it"
    )
    record = drill_record(pytester)
    assert record["verdict"] == "passed", record["reasons"]
    # The drill passed: a scenario expecting that passes, one expecting failure fails its test.
    result.assert_outcomes(**({"passed": 1} if expect == "passed" else {"failed": 1}))
    m = record["measures"]
    assert m["alert"] == "DrillbookServiceDown"
    assert m["tta_s"] is not None and m["ttn_s"] is not None and m["ttack_s"] is not None
    assert m["ttack_s"] >= m["ttn_s"]  # asked once the page arrived
    assert m["tta_bracket_s"][0] <= m["tta_s"] <= m["tta_bracket_s"][1]
    assert record["alerts"][0]["ack_detail"] == "answered: paged and on it"
