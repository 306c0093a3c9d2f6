"""What the GameDay console and its live page show, without a terminal: the clock against the
RTO and the response target, escaping, and the options that do not go together."""

from __future__ import annotations

from drillbook.cli import main
from drillbook.operator import ManualOutcome, StepInfo
from drillbook.runbook.gameday import clock_line
from drillbook.runbook.live import render_page


def step(**kw: object) -> StepInfo:
    base: dict[str, object] = {
        "drill_id": "d",
        "index": 2,
        "total": 5,
        "name": "restart",
        "kind": "manual",
        "t_zero_mono": 100.0,
        "rto_s": 900.0,
        "response_target_s": 3600.0,
        "severity": "P1",
    }
    base.update(kw)
    return StepInfo(**base)  # type: ignore[arg-type]


def test_clock_line_against_rto_and_response_target() -> None:
    assert clock_line(step(), 100.0 + 192) == (
        "03:12 since inject · RTO 15:00 (21% used) · P1 response target 1:00:00"
    )
    assert "RTO 15:00 (111% used) OVER" in clock_line(step(), 100.0 + 1000)
    assert clock_line(step(t_zero_mono=None, rto_s=None, response_target_s=None), 5.0) == (
        "no clock: nothing injected"
    )


def test_outcome_results_are_the_three_keys() -> None:
    assert ManualOutcome("skipped", "n/a").result == "skipped"
    try:
        ManualOutcome("maybe")
    except ValueError as exc:
        assert "done" in str(exc)
    else:
        raise AssertionError("an unknown result was accepted")


def test_live_page_escapes_what_people_typed() -> None:
    page = render_page(
        {
            "drill": "d",
            "current": None,
            "steps": [
                {
                    "index": 1,
                    "name": "<b>x</b>",
                    "kind": "manual",
                    "result": "failed",
                    "duration_s": 3.0,
                    "note": "<script>alert(1)</script>",
                }
            ],
        }
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http-equiv='refresh'" in page


def test_gameday_live_needs_gameday_and_scenario_files(capsys: object) -> None:
    assert main(["run", "--gameday-live", "0", "x.yaml"]) == 2
    assert main(["run", "--gameday", "--gameday-live", "0", "drills/"]) == 2
