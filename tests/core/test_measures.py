"""The measures at their edges (timeline.py): data lost on either side of t_inject, relapses after
recovery, outages no probe saw, and answers that came late. Pure: exact samples, no clock."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from drillbook.dataloss import data_loss
from drillbook.model import Objectives, Verdict
from drillbook.timeline import Sample, compute_measures, judge


@dataclass(frozen=True)
class W:
    seq: int
    sent: float
    at: float


def _writes(n: int, start: float = 100.0, every: float = 0.01, rtt: float = 0.002) -> list[W]:
    """n writes from one writer, ``every`` seconds apart, each acknowledged ``rtt`` after sent."""
    return [W(i + 1, start + i * every, start + i * every + rtt) for i in range(n)]


def _samples(probe: str, pattern: str, start: float = 0.0, step: float = 0.1) -> list[Sample]:
    return [
        Sample(probe, start + i * step, start + i * step + 0.01, c == "+")
        for i, c in enumerate(pattern)
    ]


# -- data lost ------------------------------------------------------------------------------


def test_nothing_lost_is_zero_and_the_recovery_point_is_the_newest_write() -> None:
    writes = _writes(50)
    loss = data_loss(writes, {w.seq for w in writes}, ledger_start=99.0, t_inject=100.2)
    assert loss.rpa_s == 0.0 and loss.lost_writes == 0 and loss.survived == 50
    assert loss.recovery_point == writes[-1].at


def test_writes_lost_after_t_inject_count_in_time() -> None:
    """The issue's reproduction: a point-in-time restore to just before the fault keeps every
    write acknowledged before t_inject and drops two seconds acknowledged after it. Before, RPA
    read ~0 (the writes before t_inject survived); it is the two seconds lost."""
    writes = _writes(600, start=100.0, every=0.005)  # 200 writes/s for 3 s
    t_inject = 100.5
    kept = {w.seq for w in writes if w.at <= t_inject or w.at > 102.5}
    loss = data_loss(writes, kept, ledger_start=99.9, t_inject=t_inject)
    lost = [w for w in writes if w.seq not in kept]
    assert loss.lost_writes == len(lost) >= 399
    assert loss.lost_before_inject == 0
    assert loss.rpa_s == pytest.approx(2.0, abs=0.02)
    assert loss.oldest_lost_at == lost[0].at and loss.newest_lost_at == lost[-1].at
    last_kept_before = writes[lost[0].seq - 2]  # seq n is writes[n - 1]
    assert loss.recovery_point == last_kept_before.sent  # its commit is no earlier than that
    verdict, _checks, reasons = judge(
        _recovered(), Objectives(rpo_s=1.0), has_fault=True, rpa_s=loss.rpa_s, lost_writes=399
    )
    assert verdict is Verdict.FAILED and any(r.startswith("rpa<=rpo") for r in reasons)


def test_a_loss_that_is_not_a_tail_counts() -> None:
    """Older rows gone, the newest survive: the lost span is between them, not ~0."""
    writes = _writes(100)
    kept = {w.seq for w in writes if not 41 <= w.seq <= 60}
    loss = data_loss(writes, kept, ledger_start=99.0, t_inject=writes[-1].at)
    assert loss.lost_writes == 20 and loss.lost_before_inject == 20
    assert loss.rpa_s == pytest.approx(writes[59].at - writes[39].sent)
    assert loss.rpa_s > 0.2  # twenty writes 10 ms apart


def test_one_lost_write_spans_at_least_one_write_interval() -> None:
    writes = _writes(10)
    loss = data_loss(writes, {w.seq for w in writes} - {5}, ledger_start=99.0)
    assert loss.lost_writes == 1
    assert loss.rpa_s is not None and loss.rpa_s >= 0.01


def test_separate_losses_are_spanned_as_one() -> None:
    writes = _writes(100)
    kept = {w.seq for w in writes} - {10, 11, 90}
    loss = data_loss(writes, kept, ledger_start=99.0)
    assert loss.rpa_s == pytest.approx(writes[89].at - writes[8].sent)  # oldest to newest


def test_nothing_survived_before_the_loss_spans_from_the_ledger_start() -> None:
    writes = _writes(20)
    kept = {w.seq for w in writes if w.seq > 10}
    loss = data_loss(writes, kept, ledger_start=99.5)
    assert loss.recovery_point == 99.5
    assert loss.rpa_s == pytest.approx(writes[9].at - 99.5)


def test_no_acknowledged_write_measures_nothing() -> None:
    loss = data_loss([], set(), ledger_start=99.0)
    assert loss.rpa_s is None
    verdict, _c, reasons = judge(_recovered(), Objectives(rpo_s=5.0), has_fault=True)
    assert verdict is Verdict.FAILED and "no ledger measured RPA" in reasons[0]


def test_any_lost_write_has_a_positive_rpa() -> None:
    """The rule the drills are checked against: lost_writes > 0 implies rpa_s > 0, whatever the
    pattern (seeded, so a failure reproduces)."""
    rng = random.Random(15)
    for _ in range(2000):
        writes = _writes(rng.randint(1, 40), every=rng.choice([0.0, 0.001, 0.01]), rtt=0.0005)
        kept = {w.seq for w in writes if rng.random() < 0.7}
        loss = data_loss(writes, kept, ledger_start=writes[0].sent, t_inject=100.1)
        if loss.lost_writes:
            assert loss.rpa_s is not None and loss.rpa_s > 0, (writes, kept)
        else:
            assert loss.rpa_s == 0.0


def test_rpo_zero_fails_on_any_lost_write() -> None:
    m = _recovered()
    ok = judge(m, Objectives(rpo_s=0.0), has_fault=True, rpa_s=0.0, lost_writes=0)
    assert ok[0] is Verdict.PASSED
    one = judge(m, Objectives(rpo_s=0.0), has_fault=True, rpa_s=1e-9, lost_writes=1)
    assert (
        one[0] is Verdict.FAILED
        and one[2][0] == "rpa<=rpo: <1ms > 0s: RPO 0 allows no loss, 1 acknowledged writes lost"
    )


def _recovered() -> object:
    return compute_measures(
        _samples("p", "+" * 11 + "-" * 5 + "+" * 20), t_inject=1.0, stable_for=0.5
    )


# -- relapse ----------------------------------------------------------------------------------


def test_a_relapse_after_recovery_is_reported_and_fails_the_verdict() -> None:
    # t_inject 1.0: fail 1.1-1.5, pass 1.6-2.6 (stable by 2.1), fail again at 2.7.
    samples = _samples("p", "+" * 11 + "-" * 5 + "+" * 11 + "--" + "+" * 10)
    m = compute_measures(samples, t_inject=1.0, stable_for=0.5)
    assert m.recovered and m.rta_s == pytest.approx(0.61)  # the first recovery is the RTA
    assert m.relapse_s == pytest.approx(1.7) and m.relapse_probe == "p"
    verdict, _checks, reasons = judge(m, Objectives(rto_s=10), has_fault=True)
    assert verdict is Verdict.FAILED
    assert any(r.startswith("no relapse: p failed again 1.7") for r in reasons)
    allowed, checks, _r = judge(m, Objectives(rto_s=10), has_fault=True, allow_relapse=True)
    assert allowed is Verdict.PASSED
    assert any(c.name == "no relapse" and "allowed by the scenario" in c.detail for c in checks)


def test_no_relapse_without_a_later_failure() -> None:
    m = compute_measures(_samples("p", "+" * 11 + "-" * 5 + "+" * 30), t_inject=1.0, stable_for=0.5)
    assert m.relapse_s is None


def test_another_probe_failing_before_recovery_held_is_the_same_outage() -> None:
    """b fails while a's recovery is not yet confirmed: no relapse, and RTA waits for b."""
    a = _samples("a", "+" * 11 + "--" + "+" * 30)  # a: fails 1.1-1.2, passes from 1.3
    b = _samples("b", "+" * 15 + "---" + "+" * 25)  # b: fails 1.5-1.7, passes from 1.8
    m = compute_measures(a + b, t_inject=1.0, stable_for=0.5)
    assert m.relapse_s is None
    assert m.rta_s == pytest.approx(0.81)
    assert m.failing_probes == ("a", "b")


def test_a_probe_failing_again_before_the_others_held_must_hold_again() -> None:
    """a holds from 1.3, b until 2.0; a fails again at 1.9 (before the outage ended): the
    service was down then, so RTA is a's second recovery, not its first."""
    a = _samples("a", "+" * 11 + "--" + "+" * 6 + "---" + "+" * 20)  # fails again 1.9-2.1
    b = _samples("b", "+" * 11 + "-" * 9 + "+" * 22)  # fails 1.1-1.9, passes from 2.0
    m = compute_measures(a + b, t_inject=1.0, stable_for=0.3)
    assert m.rta_s == pytest.approx(1.21)  # a passes again from 2.2
    assert m.relapse_s is None


# -- not observed, late answers ----------------------------------------------------------------


def test_an_outage_no_probe_saw_has_no_recovery_time() -> None:
    m = compute_measures(_samples("p", "+" * 30), t_inject=1.0, stable_for=0.5)
    assert not m.detected and m.recovered and m.rta_s is None and m.rta_bracket_s is None
    verdict, checks, reasons = judge(m, Objectives(rto_s=10), has_fault=True)
    assert verdict is Verdict.FAILED
    assert any(r.startswith("rta<=rto: not observed") for r in reasons)
    assert next(c for c in checks if c.name == "recovered").detail.startswith("healthy, but")


def test_a_drill_without_a_fault_still_times_its_recovery() -> None:
    m = compute_measures(_samples("p", "+" * 30), t_inject=1.0, stable_for=0.5, has_fault=False)
    assert m.recovered and m.rta_s == pytest.approx(0.01)  # the first look after t_inject


def test_a_passing_answer_that_came_late_dates_the_recovery_by_its_answer() -> None:
    """The hung service: the first passing probe started at 6.24 s while the service was still
    stopped and got its answer when it resumed at 7.05 s. RTA is never before 7.05 s."""
    t_inject = 0.0
    failing = [Sample("p", 0.25 * i, 0.25 * i + 0.2, False) for i in range(1, 25)]  # to 6.0
    late = Sample("p", 6.24, 7.06, True)
    after = [Sample("p", 7.06 + 0.25 * i, 7.07 + 0.25 * i, True) for i in range(1, 10)]
    m = compute_measures([*failing, late, *after], t_inject, stable_for=1.0)
    assert m.rta_s == pytest.approx(7.06)
    assert m.rta_bracket_s == pytest.approx((6.0, 7.06))
    ok = judge(m, Objectives(rto_s=7.0), has_fault=True)
    assert ok[0] is Verdict.FAILED  # 7.06 s is over a 7 s RTO; the probe's start was not


def test_a_failing_answer_that_came_late_dates_detection_by_its_answer() -> None:
    """A probe that began 0.1 s after the fault and waited out a 5 s timeout detected nothing
    until 5.1 s; a faster probe's failing answer at 2.0 s is the detection. A 3 s response
    target is missed when only the slow probe watches (its start was not a detection)."""
    slow = [Sample("slow", -1.0, -0.99, True), Sample("slow", 0.1, 5.1, False)]
    fast = [Sample("fast", -0.5, -0.49, True), Sample("fast", 1.99, 2.0, False)]
    both = compute_measures([*slow, *fast], t_inject=0.0, stable_for=1.0)
    assert both.ttd_s == pytest.approx(2.0)
    alone = compute_measures(slow, t_inject=0.0, stable_for=1.0)
    assert alone.ttd_s == pytest.approx(5.1)
    assert alone.ttd_bracket_s == pytest.approx((0.0, 5.1))
    assert judge(alone, Objectives(response_target_s=3.0), has_fault=True)[0] is Verdict.FAILED


def test_ticks_longer_than_stable_for_agree_while_waiting_and_at_the_end() -> None:
    """A probe every second, stable_for 0.3 s: the drill waiting at 2.4 s sees the look at 2.0 s
    hold (nothing failed for 0.3 s); the failure at 3.0 s, seen at the end, is a relapse after
    that recovery, not a reason to take it back."""
    looks = [Sample("p", 1.0, 1.01, False), Sample("p", 2.0, 2.01, True)]
    waiting = compute_measures(looks, t_inject=0.5, stable_for=0.3, now=2.4)
    assert waiting.recovered and waiting.rta_s == pytest.approx(1.51)
    final = compute_measures(
        [*looks, Sample("p", 3.0, 3.01, False)], t_inject=0.5, stable_for=0.3, now=3.1
    )
    assert final.rta_s == waiting.rta_s
    assert final.relapse_s == pytest.approx(2.5)


def test_allow_relapse_is_a_scenario_field(tmp_path: Path) -> None:
    from drillbook.errors import ScenarioError
    from drillbook.scenario import load_scenario

    base = "id: r\nrecovery: [{kind: automatic}]\n"
    (tmp_path / "yes.yaml").write_text(base + "allow_relapse: true\n")
    (tmp_path / "no.yaml").write_text(base)
    (tmp_path / "bad.yaml").write_text(base + "allow_relapse: sometimes\n")
    assert load_scenario(tmp_path / "yes.yaml").allow_relapse is True
    assert load_scenario(tmp_path / "no.yaml").allow_relapse is False
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "bad.yaml")
    assert info.value.field == "allow_relapse" and info.value.line == 3
