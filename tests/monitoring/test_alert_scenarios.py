"""The `alerts:` and `expect:` scenario fields: parsed into the model, and bad input refused with
file, line and field, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from drillbook.backends.base import get_registry
from drillbook.config import Config
from drillbook.errors import ScenarioError
from drillbook.model import TargetSpec, Verdict
from drillbook.scenario import load_scenario

HEAD = """\
id: s
fault: {type: process.kill, target: svc}
probes: [{name: health, type: http, target: svc}]
recovery: [{kind: automatic}]
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + text)
    config = Config(
        source="drillbook.yaml",
        workdir=tmp_path,
        targets={"svc": TargetSpec("svc", "local", {"command": ["true"]})},
    )
    return load_scenario(path, registry=get_registry(), config=config)


def test_alerts_are_parsed_and_the_guard_ignores_the_expected_ones(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        """\
expect: failed
alerts:
  scrape: [svc]
  expect:
    - Down
    - {name: ErrorRate, labels: {target: svc}, notify: false, ack: silence}
  silent: [Latency]
  poll_interval: 500ms
  targets: {tta: 30s, ttack: 2m}
guards:
  - probe: {type: alerts.quiet}
""",
    )
    assert s.expect is Verdict.FAILED and "monitoring" in s.backends
    a = s.alerts
    assert a is not None and a.scrape == ("svc",) and a.poll_interval_s == 0.5
    assert [(e.name, dict(e.labels), e.notify, e.ack) for e in a.expect] == [
        ("Down", {}, True, None),
        ("ErrorRate", {"target": "svc"}, False, "silence"),
    ]
    assert [(e.name, e.notify) for e in a.silent] == [("Latency", False)]
    assert dict(a.targets_s) == {"tta": 30.0, "ttack": 120.0}
    assert s.guards[0].probe.params["expected"] == ["Down", "ErrorRate"]


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("alerts:\n  expect: [Down]\n  page: yes\n", 7, "alerts.page", "unknown key"),
        ("alerts:\n  expect: [{name: Down, ack: email}]\n", 6, "alerts.expect[0]", ""),
        (
            "alerts:\n  expect: [Down]\n  scrape: [nope]\n",
            7,
            "alerts.scrape[0]",
            "unknown target 'nope'",
        ),
        (
            "alerts:\n  expect: [Down]\n  targets: {tta: soon}\n",
            7,
            "alerts.targets.tta",
            "duration",
        ),
        ("alerts: {silent: [Down]}\n", 5, "alerts", "expect"),
        ("expect: aborted\n", 5, "expect", ""),
        (
            "guards:\n  - probe: {type: prometheus, query: up, comparator: '~', value: 1}\n",
            6,
            "guards[0].probe.comparator",
            "",
        ),
    ],
)
def test_bad_alert_input_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, words: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        load(tmp_path, text)
    err = info.value
    assert (err.line, err.field) == (line, field), str(err)
    assert words in str(err)
