"""The alert verdict rules (drillbook.alerting): pure, so every rule is checked exactly."""

from __future__ import annotations

from drillbook.alerting import AlertOutcome, alert_checks, response_targets


def failed(checks: list) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.ok}


def test_an_alert_with_no_rule_fails_naming_it_as_a_blind_spot() -> None:
    checks = alert_checks([AlertOutcome("DiskFull", rule_exists=False)], {"tta": 60}, "P1")
    detail = failed(checks)["alert:DiskFull"]
    assert "DiskFull never fired" in detail
    assert "no alerting rule named DiskFull" in detail and "blind spot" in detail


def test_an_alert_whose_rule_exists_but_never_fired_says_so_without_blaming_the_rules() -> None:
    detail = failed(alert_checks([AlertOutcome("Down", rule_exists=True)], {}, "P1"))["alert:Down"]
    assert "never fired" in detail and "blind spot" not in detail


def test_tta_is_judged_at_the_brackets_upper_end() -> None:
    # The poll saw it firing at 29.9 s, but that poll ended at 30.4 s: only then is it certain.
    o = AlertOutcome("Down", rule_exists=True, tta_s=29.9, tta_bracket_s=(29.0, 30.4))
    assert "tta<=target:Down" in failed(alert_checks([o], {"tta": 30.0}, "P1"))
    o.tta_bracket_s = (29.0, 29.95)
    assert failed(alert_checks([o], {"tta": 30.0}, "P1")) == {}


def test_missing_notification_and_acknowledgement_fail() -> None:
    o = AlertOutcome(
        "Down", rule_exists=True, notify=True, ack="silence", tta_s=1.0, tta_bracket_s=(0.5, 1.1)
    )
    bad = failed(alert_checks([o], {"tta": 60, "ttn": 60, "ttack": 60}, "P1"))
    assert set(bad) == {"notified:Down", "acknowledged:Down"}
    o.ttn_s, o.ttn_bracket_s = 2.0, (2.0, 2.0)
    o.ttack_s, o.ttack_bracket_s = 90.0, (89.0, 90.5)
    bad = failed(alert_checks([o], {"tta": 60, "ttn": 60, "ttack": 60}, "P1"))
    assert set(bad) == {"ttack<=target:Down"}


def test_a_silent_alert_that_fired_fails_and_one_that_did_not_passes() -> None:
    quiet = AlertOutcome("Latency", silent=True)
    loud = AlertOutcome("ErrorRate", silent=True, tta_s=3.0)
    bad = failed(alert_checks([quiet, loud], {}, "P1"))
    assert list(bad) == ["silent:ErrorRate"] and "must stay silent" in bad["silent:ErrorRate"]


def test_an_alert_still_firing_after_recovery_fails_only_once_resolution_was_awaited() -> None:
    o = AlertOutcome("Down", rule_exists=True, tta_s=1.0)
    assert failed(alert_checks([o], {}, "P1")) == {}
    assert "resolved:Down" in failed(alert_checks([o], {}, "P1", recovered=True))
    o.resolve_s = 4.0
    assert failed(alert_checks([o], {}, "P1", recovered=True)) == {}


def test_response_targets_scenario_over_config_over_matrix() -> None:
    assert response_targets("P0", None, {}) == {"tta": 300.0, "ttn": 300.0, "ttack": 900.0}
    table = {"P0": {"tta": 120, "ttack": 600}}
    assert response_targets("P0", table, {"tta": 30.0}) == {
        "tta": 30.0,
        "ttn": 300.0,
        "ttack": 600.0,
    }
