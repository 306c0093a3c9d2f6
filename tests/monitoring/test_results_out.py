"""Drill results into the team's tools: notifications (generic JSON and Slack-compatible) to a
local receiver, a failing receiver that neither fails nor hangs the drill and is journaled, and
the Pushgateway export on the real Pushgateway."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest

from drillbook.backends.monitoring.receiver import WebhookReceiver
from drillbook.backends.monitoring.results import notify, push_results

RECORD = {
    "id": "svc_restart",
    "scenario": "svc_restart",
    "verdict": "failed",
    "severity": "P1",
    "reasons": ["rta<=rto: 3.0s > 1.0s"],
    "measures": {"ttd_s": 0.1, "rta_s": 3.0, "tta_s": 4.5, "ttn_s": 4.6, "alerts": []},
    "objectives": {"rto_s": 1.0, "rpo_s": None},
}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver("127.0.0.1", 0, time.monotonic)
    yield r
    r.stop()


def test_json_and_slack_payloads_reach_a_local_receiver(receiver: WebhookReceiver) -> None:
    targets = [
        {"url": f"{receiver.url}/json", "format": "json"},
        {"url": f"{receiver.url}/slack", "format": "slack", "events": ["end", "abort"]},
    ]
    assert notify(targets, "start", "svc_restart", "run-1") == []
    assert notify(targets, "end", "svc_restart", "run-1", RECORD) == []
    got = [(d.path, d.body) for d in receiver.snapshot()]
    assert [p for p, _ in got] == ["/json", "/json", "/slack"]  # slack did not want "start"
    start, end, slack = (b for _, b in got)
    assert (
        start["event"] == "start" and start["drill"] == "svc_restart" and start["run_id"] == "run-1"
    )
    assert (
        end["verdict"] == "failed"
        and end["measures"]["tta_s"] == 4.5
        and "alerts" not in end["measures"]
    )
    assert set(slack) == {"text"} and "svc_restart ended: failed" in slack["text"]
    assert "rta<=rto" in slack["text"]


def test_a_receiver_that_never_answers_costs_a_bounded_wait_and_is_reported() -> None:
    with socket.socket() as hole:  # accepts connections (backlog) but never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        url = f"http://127.0.0.1:{hole.getsockname()[1]}/hook"
        started = time.monotonic()
        failures = notify([{"url": url, "timeout_s": 0.5}], "end", "d", "r", RECORD)
        waited = time.monotonic() - started
    assert [u for u, _ in failures] == [url] and "timed out" in failures[0][1]
    assert waited < 5.0  # bounded by the timeout, not by the receiver


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
backends:
  monitoring:
    notify:
      - {url: "http://127.0.0.1:DEAD/hook", format: slack, timeout_s: 0.5}
      - {url: "RECEIVER/hook", format: json}
"""

SCENARIO = """\
id: svc_restart
objectives: {rto: 20s}
fault: {type: process.kill, target: svc, signal: KILL}
probes: [{name: health, type: http, target: svc}]
recovery: [{kind: automatic}]
"""


def test_a_failed_notification_never_fails_the_drill_and_is_journaled(
    pytester: pytest.Pytester, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRILLBOOK_PUSHGATEWAY_URL", raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    pytester.makefile(
        ".yaml", drillbook=CONFIG.replace("DEAD", str(dead)).replace("RECEIVER", receiver.url)
    )
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "s.yaml").write_text(SCENARIO)
    pytester.makepyfile(
        test_notify_project="def test_scenario(drill_scenario, drill):\n    drill.run(drill_scenario)\n"
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    events = [
        json.loads(line)
        for line in (pytester.path / "reports" / "latest" / "events.jsonl").read_text().splitlines()
    ]
    failed = [e for e in events if e.get("kind") == "notify_failed"]
    assert [e["notify_event"] for e in failed] == ["start", "end"]
    assert all(e["host"] == f"127.0.0.1:{dead}" and "/hook" not in json.dumps(e) for e in failed)
    assert [d.body["event"] for d in receiver.snapshot()] == ["start", "end"]
    assert receiver.snapshot()[1].body["verdict"] == "passed"


def test_results_are_pushed_to_the_real_pushgateway(monitoring: dict[str, str]) -> None:
    url = monitoring["DRILLBOOK_PUSHGATEWAY_URL"]
    scenario = f"test_push_{int(time.time() * 1000) % 10**8}"
    push_results(url, {**RECORD, "scenario": scenario}, "run-7")
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
            text = r.read().decode()
        lines = [ln for ln in text.splitlines() if f'scenario="{scenario}"' in ln]
        assert any(
            ln.startswith("drillbook_drill_rta_seconds{") and ln.endswith(" 3") for ln in lines
        )
        assert any(
            ln.startswith("drillbook_drill_tta_seconds{") and ln.endswith(" 4.5") for ln in lines
        )
        assert any('verdict="failed"' in ln and ln.endswith(" 1") for ln in lines)
        assert not any(
            ln.startswith("drillbook_drill_rpa_seconds{") for ln in lines
        )  # not measured
    finally:
        req = urllib.request.Request(
            f"{url}/metrics/job/drillbook/scenario/{scenario}", method="DELETE"
        )
        urllib.request.urlopen(req, timeout=5).close()
