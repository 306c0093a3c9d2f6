"""The terminal's closing table says what each drill shape measured, and never shows a recovery
time a drill did not measure."""

from __future__ import annotations

from drillbook.session import drill_table


def test_a_hold_drill_shows_its_hold_and_its_return() -> None:
    record = {
        "id": "hold_slo_latency",
        "verdict": "passed",
        "measures": {"outage_observed": False, "rta_s": 5.01},
        "objectives": {"rto_s": 30.0},
        "hold": {"held_s": 5.0, "return_s": 0.012},
    }
    row = drill_table([record]).splitlines()[-1]
    assert "held 5.0s" in row and "back in 12ms" in row
    assert "not observed" not in row


def test_a_hold_drill_that_never_returned_says_so() -> None:
    record = {
        "id": "h",
        "verdict": "failed",
        "measures": {},
        "objectives": {"rto_s": 30.0},
        "hold": {"held_s": 1.5, "return_s": None},
    }
    assert "back in never" in drill_table([record])


def test_an_outage_no_probe_saw_has_no_recovery_time() -> None:
    record = {
        "id": "blink",
        "verdict": "failed",
        "measures": {"outage_observed": False, "rta_s": None},
        "objectives": {"rto_s": 10.0},
    }
    assert "not observed / 10s" in drill_table([record])
