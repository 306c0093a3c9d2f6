"""The monitoring backend against the real Prometheus, Alertmanager and Pushgateway of
`scripts/testenv up monitoring`: probes, the shipped rules, and an alert timed end to end
(fires, notifies the webhook receiver, acknowledged by a real Alertmanager silence, resolves)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from monitoring_kit import dead_port

from drillbook.backends.base import Context
from drillbook.clock import get_clock
from drillbook.config import Config
from drillbook.model import AlertSpec, AlertsSpec
from drillbook.plugin import needs_backend

RULES = Path(__file__).parents[2] / "deploy" / "monitoring" / "rules"


def ctx(**params: object) -> Context:
    return Context(params=params)


def wait_for(cond: Callable[[], bool], limit_s: float = 30.0) -> bool:
    """Poll ``cond`` every 0.25 s, at most ``limit_s`` (bounded: every loop here is)."""
    give_up = time.monotonic() + limit_s
    while time.monotonic() < give_up:
        if cond():
            return True
        time.sleep(0.25)
    return cond()


def test_shipped_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    needs_backend("monitoring", None if promtool else "promtool is not installed")
    files = sorted(str(p) for p in RULES.glob("*.yml"))
    assert files
    out = subprocess.run(
        [str(promtool), "check", "rules", *files], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for name in (
        "DrillbookServiceDown",
        "DrillbookHighErrorRate",
        "DrillbookHighLatency",
        "DrillbookReplicationLag",
        "DrillbookDiskAlmostFull",
        "DrillbookMemoryHigh",
        "DrillbookCertificateExpiry",
    ):
        assert f"alert: {name}" in RULES.joinpath("drillbook-sandbox.rules.yml").read_text()


def test_prometheus_probe_compares_and_reports_the_value(monitoring: dict[str, str]) -> None:
    from drillbook.backends.monitoring.probes import PrometheusProbe

    ok = PrometheusProbe(ctx(query="vector(2)", comparator=">=", value=2)).check()
    assert ok.ok and ok.value == 2.0 and "2 >= 2 holds" in ok.detail
    bad = PrometheusProbe(ctx(query="vector(2)", comparator="<", value=1)).check()
    assert not bad.ok and bad.value == 2.0 and "fails" in bad.detail
    empty = PrometheusProbe(ctx(query='up{job="no-such-job"}', comparator="==", value=1)).check()
    assert not empty.ok and "empty" in empty.detail
    allowed = PrometheusProbe(
        ctx(query='up{job="no-such-job"}', comparator="==", value=1, empty="ok")
    )
    assert allowed.check().ok


def test_probes_report_an_unreachable_prometheus_as_not_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    from drillbook.backends.monitoring.probes import AlertProbe, PrometheusProbe

    monkeypatch.setenv("DRILLBOOK_PROMETHEUS_URL", f"http://127.0.0.1:{dead_port()}")
    r = PrometheusProbe(ctx(query="vector(1)", comparator="==", value=1)).check()
    assert not r.ok and "Connection refused" in r.detail
    assert not AlertProbe(ctx(alert="Anything")).check().ok


def test_alert_probe_and_guard_see_a_real_alert(dead_target: Callable[[], str]) -> None:
    from drillbook.backends.monitoring.probes import AlertProbe, QuietProbe

    name = dead_target()
    firing = AlertProbe(ctx(alert="DrillbookServiceDown", labels={"target": name}, expect="firing"))
    assert wait_for(lambda: firing.check().ok), "DrillbookServiceDown never fired for a dead target"
    quiet = AlertProbe(ctx(alert="DrillbookServiceDown", labels={"target": name}))
    assert not quiet.check().ok
    guard = QuietProbe(ctx(labels={"severity": "critical", "target": name}))
    r = guard.check()
    assert not r.ok and "unexpected alert firing: DrillbookServiceDown" in r.detail
    assert QuietProbe(ctx(labels={"target": name}, expected=["DrillbookServiceDown"])).check().ok


def test_an_alert_is_timed_from_fault_to_silence_to_resolution(
    monitoring: dict[str, str], dead_target: Callable[[], str]
) -> None:
    """TTA, TTN and TTAck (by a real Alertmanager silence) and resolution, with brackets."""
    from drillbook.backends.monitoring.watch import AlertWatch

    name = f"test-{int(time.time() * 1000) % 10**8}"
    spec = AlertsSpec(
        expect=(AlertSpec("DrillbookServiceDown", {"target": name}, notify=True, ack="silence"),),
        silent=(AlertSpec("DrillbookHighErrorRate", {"target": name}),),
        poll_interval_s=0.2,
        resolve_timeout_s=30.0,
    )
    events: list[tuple[str, dict[str, object]]] = []
    clock = get_clock()
    watch = AlertWatch(
        spec,
        Config(source="test", workdir=Path.cwd()),
        clock,
        lambda kind, **data: events.append((kind, data)),
    )
    watch.prepare(settle_s=5.0)
    assert watch.outcomes[0].rule_exists is True and watch.outcomes[0].for_s == 2.0
    sd = Path(monitoring["DRILLBOOK_PROMETHEUS_SD_DIR"]) / f"{name}.json"
    silence = None
    try:
        t0 = clock.monotonic()
        watch.start(t0, time.time())
        sd.write_text(
            f'[{{"targets": ["127.0.0.1:{dead_port()}"], "labels": {{"target": "{name}"}}}}]'
        )
        o = watch.outcomes[0]
        assert wait_for(lambda: o.tta_s is not None and o.ttn_s is not None, 40.0), watch.errors
        silence = watch.silence_for("DrillbookServiceDown")
        assert wait_for(lambda: o.ttack_s is not None, 10.0)
        sd.unlink()
        watch.mark_recovered(clock.monotonic())
        watch.await_resolved(clock.monotonic() + 30.0)
    finally:
        sd.unlink(missing_ok=True)
        watch.stop()
        if silence and watch.am is not None:
            watch.am.expire_silence(silence)
    assert o.tta_bracket_s is not None and o.tta_bracket_s[0] <= o.tta_s <= o.tta_bracket_s[1]
    # The rule needs `for: 2s` of a failed scrape, so it cannot fire sooner after the fault.
    assert o.tta_s >= 2.0 and o.active_at_s is not None and o.active_at_s <= o.tta_bracket_s[1]
    assert o.ttn_s is not None and o.ttn_s >= o.active_at_s
    assert o.ttack_s is not None and o.ttack_s >= o.tta_bracket_s[0] and "silence" in o.ack_detail
    assert o.resolve_s is not None
    assert watch.outcomes[1].tta_s is None  # the silent one stayed silent
    kinds = [k for k, _ in events]
    for kind in (
        "alerts_armed",
        "alert_firing",
        "alert_notified",
        "alert_acknowledged",
        "alert_resolved",
    ):
        assert kind in kinds


def test_a_silence_from_before_the_drill_acknowledges_nothing(
    monitoring: dict[str, str], dead_target: Callable[[], str]
) -> None:
    from drillbook.backends.monitoring.watch import AlertWatch

    name = dead_target()
    spec = AlertsSpec(
        expect=(AlertSpec("DrillbookServiceDown", {"target": name}, notify=False, ack="silence"),),
        poll_interval_s=0.2,
    )
    watch = AlertWatch(
        spec, Config(source="test", workdir=Path.cwd()), get_clock(), lambda *a, **k: None
    )
    silence = watch.silence_for("DrillbookServiceDown")
    try:
        time.sleep(1.1)  # the silence is now older than t_inject, by more than the clocks' skew
        watch.start(get_clock().monotonic(), time.time())
        o = watch.outcomes[0]
        assert wait_for(lambda: o.tta_s is not None, 40.0)
        time.sleep(1.0)
        assert o.ttack_s is None
    finally:
        watch.stop()
        assert watch.am is not None
        watch.am.expire_silence(silence)
