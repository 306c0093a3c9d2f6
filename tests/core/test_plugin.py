"""The pytest plugin, through pytester: real drills on a real local service in a scratch project."""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Any

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
  norestart:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
    port: auto
    restart: never
"""

SCENARIO = """\
id: svc_restart
objectives: {rto: 20s, severity: P2}
controls: [SOC2-A1.3]
fault: {type: process.kill, target: svc, signal: KILL}
probes:
  - {name: health, type: http, target: svc}
recovery:
  - {kind: automatic}
"""

SCENARIO_TEST = """\
from drillbook.plugin import DrillFixture

def test_scenario(drill_scenario, drill: DrillFixture) -> None:
    drill.run(drill_scenario)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", drillbook=CONFIG)
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "svc_restart.yaml").write_text(SCENARIO)
    pytester.makepyfile(test_scenarios=SCENARIO_TEST)
    return pytester


def journal(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (pytester.path / "reports" / "latest" / "journal.json").read_text()
    )
    return data


def test_marker_and_options_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.drill(rto=None, rpo=None, severity='P2'*"])
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--drill-dry-run*", "*--drill-allow-production*"])


def test_scenario_runs_as_a_test_and_writes_the_journal(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-k", "svc_restart", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*drillbook*", "*svc_restart*PASSED*", "reports: *"])
    doc = journal(project)
    assert doc["schema_version"] == 1 and doc["environment"]["name"] == "test"
    (d,) = doc["drills"]
    assert d["id"] == "svc_restart" and d["verdict"] == "passed"
    m = d["measures"]
    assert isinstance(m["rta_s"], float) and isinstance(m["ttd_s"], float)
    low, high = m["rta_bracket_s"]
    assert low <= m["rta_s"] <= high
    assert m["rpa_s"] is None and m["lost_writes"] is None
    assert [r["ok"] for r in d["reverts"]] == [True]
    assert [p["phase"] for p in d["phases"]][:2] == ["steady_state", "inject"]
    # The intent was recorded and marked reverted, then moved to the archive.
    assert (project.path / ".drillbook" / "intents.jsonl").read_text() == ""
    lines = (project.path / ".drillbook" / "intents.archive.jsonl").read_text().splitlines()
    assert [json.loads(x)["op"] for x in lines] == ["intent", "injected", "reverted"]


def test_events_are_a_hash_chain(project: pytest.Pytester) -> None:
    import hashlib

    project.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    raw = (project.path / "reports" / "latest" / "events.jsonl").read_bytes().splitlines()
    prev = "0" * 64
    for i, line in enumerate(raw):
        event = json.loads(line)
        assert event["seq"] == i and event["prev"] == prev
        prev = hashlib.sha256(line).hexdigest()
    kinds = [json.loads(x)["kind"] for x in raw]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert {"intent", "inject", "detect", "recovered", "revert", "verdict"} <= set(kinds)


def test_missed_rto_fails_and_still_reverts(project: pytest.Pytester) -> None:
    # No restart policy: the service stays down, the drill times out, revert restarts it.
    (project.path / "scenarios" / "svc_restart.yaml").write_text(
        SCENARIO.replace("target: svc", "target: norestart").replace("rto: 20s", "rto: 1s")
        + "timeout: 2s\n"
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*drill failed: recovered: not within the timeout*"])
    (d,) = journal(project)["drills"]
    assert d["verdict"] == "failed" and d["measures"]["rta_s"] is None
    assert d["reverts"][0]["ok"] is True  # revert brought it back (process.kill's revert starts it)


def test_unhealthy_before_injection_is_an_error_and_injects_nothing(
    project: pytest.Pytester,
) -> None:
    (project.path / "scenarios" / "svc_restart.yaml").write_text(
        SCENARIO.replace(
            "type: http, target: svc}", "type: http, url: 'http://127.0.0.1:9/nothing'}"
        )
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    (d,) = journal(project)["drills"]
    assert d["verdict"] == "error"
    assert "unhealthy before injection" in d["reasons"][0]
    assert not (project.path / ".drillbook" / "intents.jsonl").exists()


def test_dry_run_prints_the_plan_and_touches_nothing(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--drill-dry-run", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*dry run: would inject process.kill: SIGKILL svc (pid *"])
    assert not (project.path / ".drillbook" / "intents.jsonl").exists()


def test_production_needs_both_keys(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--drill-env", "production", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*refused: environment 'production' is production*"])
    assert not (project.path / ".drillbook" / "intents.jsonl").exists()


def test_python_drill_with_marker_and_junit_properties(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_py_drill=textwrap.dedent(
            """
            import pytest
            from drillbook import FaultSpec, ProbeSpec

            @pytest.mark.drill(rto="20s", severity="P1", controls=["SOC2-A1.3"])
            def test_kill(drill):
                health = ProbeSpec("http", "health", targets=("svc",))
                drill.steady_state(health)
                drill.inject(FaultSpec("process.kill", {"signal": "KILL"}, targets=("svc",)))
                drill.await_recovery()
            """
        )
    )
    xml = project.path / "junit.xml"
    result = project.runpytest_subprocess(
        "test_py_drill.py", f"--junitxml={xml}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    (d,) = journal(project)["drills"]
    assert d["id"] == "test_kill" and d["severity"] == "P1" and d["objectives"]["rto_s"] == 20
    text = xml.read_text()
    assert 'name="drillbook.verdict" value="passed"' in text
    assert 'name="drillbook.rta_s" value="' in text


def test_invalid_scenario_is_a_usage_error_naming_the_line(project: pytest.Pytester) -> None:
    (project.path / "scenarios" / "svc_restart.yaml").write_text(
        SCENARIO.replace("rto: 20s", "rto: someday")
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        ["*invalid scenario: scenarios/svc_restart.yaml:2: objectives.rto: expected a duration*"]
    )
    assert not (project.path / ".drillbook").exists()
    # drillbook run validates first and says so with exit code 2.
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run"],
        cwd=project.path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "scenarios/svc_restart.yaml:2: objectives.rto:" in out.stderr


def test_manual_step_in_ci_is_refused_unless_answered(project: pytest.Pytester) -> None:
    text = SCENARIO.replace(
        "  - {kind: automatic}", "  - {kind: manual, name: page, instruction: Page the on-call}"
    )
    (project.path / "scenarios" / "svc_restart.yaml").write_text(text)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    (d,) = journal(project)["drills"]
    assert "--drill-answer" in d["reasons"][0]
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--drill-answer", "page=done")
    result.assert_outcomes(passed=1)
    (d,) = journal(project)["drills"]
    assert (
        d["steps"][0]["kind"] == "manual"
        and "answered by --drill-answer" in d["steps"][0]["detail"]
    )


WAIT_UP = (
    "import socket, sys, time\n"
    "port = int(open('.drillbook/local/svc.port').read())\n"
    "for _ in range(500):\n"
    "    try:\n"
    "        socket.create_connection(('127.0.0.1', port), 0.2).close()\n"
    "        sys.exit(0)\n"
    "    except OSError:\n"
    "        time.sleep(0.02)\n"
    "sys.exit(1)\n"
)


def test_the_probes_look_when_the_fault_lands_and_when_a_step_ends(
    project: pytest.Pytester,
) -> None:
    # Ticks a minute apart: a tick's wait would put TTD and RTA near 60 s (the timeout fails the
    # drill first). The engine's kicks look at the inject and after the step instead.
    (project.path / "scenarios" / "slow_ticks.yaml").write_text(
        textwrap.dedent(
            """\
            id: slow_ticks
            objectives: {rto: 20s}
            probe_interval: 60s
            stable_for: 300ms
            timeout: 20s
            fault: {type: process.kill, target: svc, signal: KILL}
            probes:
              - {name: health, type: http, target: svc}
            recovery:
              - kind: scripted
                name: wait_up
                type: command
            """
        )
        + f"    command: [{json.dumps(sys.executable)}, -c, {json.dumps(WAIT_UP)}]\n"
    )
    result = project.runpytest_subprocess("-k", "slow_ticks", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    (d,) = journal(project)["drills"]
    m = d["measures"]
    assert d["verdict"] == "passed"
    # The bound is the code's own schedule, not the machine's speed: the next tick is 60 s after
    # the first, so any look sooner than that was a kick.
    assert m["ttd_s"] < 60 and m["rta_s"] < 60
    low, high = m["rta_bracket_s"]
    assert low <= m["rta_s"] <= high
    ticks = [e for e in d["timeline"] if e["kind"] == "probe" and e.get("phase") != "steady_state"]
    # Tick 0 (it may see the kill land), the look at the inject (again if tick 0 was still
    # open), the look after the step; stable_for then passes with no further tick.
    assert 2 <= len(ticks) <= 4, ticks
    assert ticks[-1]["ok"] and not any(e["ok"] for e in ticks[1:-1])


def test_probes_watched_after_the_steady_state_are_probed_too(project: pytest.Pytester) -> None:
    # The steady-state check opens the probe scheduler; a probe added after it (a Python drill
    # may) must not be left out of the ticks.
    project.makepyfile(
        test_late_watch=textwrap.dedent(
            """
            from drillbook import FaultSpec, ProbeSpec

            def test_late(drill):
                drill.steady_state(ProbeSpec("http", "health", targets=("svc",)))
                drill.watch(ProbeSpec("tcp", "port", targets=("svc",)))
                drill.inject(FaultSpec("process.kill", {"signal": "KILL"}, targets=("svc",)))
                drill.await_recovery()
            """
        )
    )
    result = project.runpytest_subprocess("test_late_watch.py", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    (d,) = journal(project)["drills"]
    looked = {e["probe"] for e in d["timeline"] if e["kind"] == "probe" and "phase" not in e}
    assert looked == {"health", "port"}
