"""Durations, redaction and the measures: the pure rules everything else is judged by."""

from __future__ import annotations

import pytest

from drillbook.durations import format_duration, parse_duration
from drillbook.model import Objectives, Severity, Verdict
from drillbook.redact import REDACTED, redact, redact_text, register_secret
from drillbook.timeline import Sample, compute_measures, judge


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("PT5M", 300),
        ("P1DT1H", 90000),
        ("250ms", 0.25),
        ("1.5", 1.5),
        (2, 2.0),
        ("PT0.5S", 0.5),
        ("2m30s", 150),
    ],
)
def test_durations_people_write(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["", "5 minutes", "-5s", "PT", "P", "1x", True, None, [], "9999999h", float("nan"), -1]
)
def test_bad_durations_are_refused_with_the_accepted_spellings(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_format_duration() -> None:
    assert [format_duration(x) for x in (None, 0.25, 1.234, 65, 3700)] == [
        "-",
        "250ms",
        "1.2s",
        "1m05s",
        "1h01m",
    ]


def test_redaction_of_dsns_tokens_and_registered_secrets() -> None:
    register_secret("CANARY-0xDEADBEEF")
    data = {
        "dsn": "postgresql://app:hunter2@db:5432/app",
        "token": "abc123",
        "note": "password=opensesame and Bearer abcdefghijkl and AKIAABCDEFGHIJKLMNOP",
        "nested": [{"msg": "leaked CANARY-0xDEADBEEF here"}],
    }
    out = redact(data)
    text = repr(out)
    for secret in (
        "hunter2",
        "abc123",
        "opensesame",
        "abcdefghijkl",
        "AKIAABCDEFGHIJKLMNOP",
        "CANARY-0xDEADBEEF",
    ):
        assert secret not in text
    assert out["dsn"] == f"postgresql://app:{REDACTED}@db:5432/app"  # still says which database
    assert redact_text("nothing secret") == "nothing secret"


def _samples(probe: str, pattern: str, start: float = 0.0, step: float = 0.1) -> list[Sample]:
    return [
        Sample(probe, start + i * step, start + i * step + 0.01, c == "+")
        for i, c in enumerate(pattern)
    ]


def test_ttd_rta_and_bracket_follow_the_definitions() -> None:
    # t_inject at 1.0; probes every 0.1s from 0.0: pass until 1.0, fail 1.1-1.5, pass from 1.6 on.
    samples = _samples("p", "+" * 11 + "-" * 5 + "+" * 20)
    m = compute_measures(samples, t_inject=1.0, stable_for=0.5)
    assert m.detected and m.recovered
    assert m.ttd_s == pytest.approx(0.11)  # the first failing probe (1.1) answered at 1.11
    assert m.ttd_bracket_s == pytest.approx((0.0, 0.11))  # [last passing start 1.0, that answer]
    # The first passing run starts at 1.6; recovery is certain when that probe answers, at 1.61.
    assert m.rta_s == pytest.approx(0.61)
    assert m.rta_bracket_s == pytest.approx(
        (0.5, 0.61)
    )  # [last failing start 1.5, first passing end 1.61]


def test_a_flap_restarts_the_stable_window() -> None:
    samples = _samples("p", "+" * 11 + "--" + "++" + "-" + "+" * 20)
    m = compute_measures(samples, t_inject=1.0, stable_for=0.5)
    assert m.rta_s == pytest.approx(0.61)  # the run at 1.3 broke at 1.5; the one at 1.6 held


def test_rta_is_the_latest_recovery_over_the_probes_that_failed() -> None:
    samples = _samples("a", "+" * 11 + "--" + "+" * 20) + _samples(
        "b", "+" * 11 + "-----" + "+" * 20
    )
    m = compute_measures(samples, t_inject=1.0, stable_for=0.2)
    assert m.rta_s == pytest.approx(0.61)
    assert set(m.failing_probes) == {"a", "b"}


def test_not_recovered_until_the_stable_window_has_passed() -> None:
    samples = _samples("p", "+" * 11 + "---" + "++")
    assert not compute_measures(samples, t_inject=1.0, stable_for=0.5).recovered
    assert compute_measures(samples, t_inject=1.0, stable_for=0.5, now=2.0).recovered


def test_undetected_fault_fails_the_detected_check() -> None:
    m = compute_measures(_samples("p", "+" * 30), t_inject=1.0, stable_for=0.5)
    assert not m.detected and m.recovered and m.rta_s is None  # healthy, outage not observed
    verdict, _checks, reasons = judge(m, Objectives(rto_s=10), has_fault=True)
    assert verdict is Verdict.FAILED
    assert any(r.startswith("detected") for r in reasons)
    assert any(r.startswith("rta<=rto: not observed") for r in reasons)


def test_judge_rto_rpo_and_response_target() -> None:
    m = compute_measures(_samples("p", "+" * 11 + "-" * 5 + "+" * 20), t_inject=1.0, stable_for=0.5)
    ok = judge(
        m,
        Objectives(rto_s=1.0, rpo_s=5.0, severity=Severity.P1, response_target_s=1.0),
        has_fault=True,
        rpa_s=2.0,
        lost_writes=3,
    )
    assert ok[0] is Verdict.PASSED
    late = judge(m, Objectives(rto_s=0.5), has_fault=True)
    assert late[0] is Verdict.FAILED and "rta<=rto" in late[2][0]
    lossy = judge(m, Objectives(rpo_s=1.0), has_fault=True, rpa_s=2.0, lost_writes=7)
    assert lossy[0] is Verdict.FAILED and "7 acknowledged writes lost" in lossy[2][0]
    unmeasured = judge(m, Objectives(rpo_s=1.0), has_fault=True)
    assert unmeasured[0] is Verdict.FAILED
