"""report.html of an alert drill: the alert's firing, notification and acknowledgement are drawn
on the timeline beside the probes, with TTA/TTN/TTAck against their targets."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "report"))

from report_fixtures import make_drill, make_journal

from drillbook.report.html import render_run_html


def alert_drill(silent_fired: bool = False) -> dict:
    drill = make_drill("service_down_alert", rta=9.0, rto=60.0)
    drill["measures"].update(
        {
            "alert": "ServiceDown",
            "tta_s": 3.5,
            "tta_bracket_s": [3.2, 3.6],
            "ttn_s": 3.7,
            "ttn_bracket_s": [3.7, 3.7],
            "ttack_s": 50.0,
            "ttack_bracket_s": [50.0, 50.0],
        }
    )
    drill["objectives"]["alert_targets_s"] = {"tta": 30.0, "ttn": 45.0, "ttack": 40.0}
    drill["alerts"] = [
        {"name": "ServiceDown", "silent": False, "tta_s": 3.5, "ttn_s": 3.7, "ttack_s": 50.0},
        {"name": "ErrorRate", "silent": True, "tta_s": 4.0 if silent_fired else None},
    ]
    return drill


def test_alert_moments_are_drawn_on_the_timeline() -> None:
    html = render_run_html(make_journal(drills=[alert_drill()]))
    assert "ServiceDown firing at 3.50s" in html
    assert "ServiceDown notified at 3.70s" in html
    assert "ServiceDown acked at 50.0s" in html
    assert "ErrorRate" not in html.split("timeline", 1)[1].split("</svg>", 1)[0]  # stayed silent


def test_alert_measures_are_judged_against_their_targets() -> None:
    html = render_run_html(make_journal(drills=[alert_drill()]))
    assert "TTA vs response target (ServiceDown)" in html
    ack = html.split("TTAck vs response target (ServiceDown)", 1)[1][:3000]
    assert "objective missed" in ack  # 50 s > 40 s


def test_a_silent_alert_that_fired_is_drawn_as_such() -> None:
    html = render_run_html(make_journal(drills=[alert_drill(silent_fired=True)]))
    assert "ErrorRate fired (must stay silent) at 4.00s" in html


def test_junit_properties_carry_tta_ttn_ttack() -> None:
    from drillbook.report.junit import junit_properties

    props = dict(junit_properties(alert_drill()))
    assert (props["drillbook.tta_s"], props["drillbook.ttn_s"], props["drillbook.ttack_s"]) == (
        "3.5",
        "3.7",
        "50",
    )
