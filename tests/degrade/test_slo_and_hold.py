"""SLO probes against a real service behind a real fault proxy, checked against the test's own
count; the hold drill's scenario rules and the breach report."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from drillbook.backends.base import Context, get_registry
from drillbook.backends.local.service import free_port
from drillbook.degrade.faults import HttpFaultsFault
from drillbook.degrade.slo import ErrorRateProbe, LatencyProbe, percentile
from drillbook.errors import ConfigError, ScenarioError
from drillbook.scenario import load_scenario

MakeCtx = Callable[..., Context]


def test_percentile_is_nearest_rank_never_interpolated_down() -> None:
    values = [0.1] * 94 + [1.0] * 6
    assert percentile(values, 95) == 1.0  # 6% are slow: p95 is slow
    assert percentile([0.1] * 95 + [1.0] * 5, 95) == 0.1
    assert percentile([3.0], 99) == 3.0


async def _look(probe: ErrorRateProbe | LatencyProbe, seconds: float) -> list[object]:
    await probe.aopen()
    try:
        await asyncio.sleep(seconds)
        return [await probe.acheck()]
    finally:
        await probe.aclose()


def test_error_rate_probe_sees_the_injected_share(
    demo_port: int, make_ctx: MakeCtx, tmp_path: Path
) -> None:
    port = free_port()
    fault = HttpFaultsFault(
        make_ctx(upstream=f"127.0.0.1:{demo_port}", listen_port=port, error_rate=0.5)
    )
    fault.resolve()
    fault.inject()
    try:
        probe = ErrorRateProbe(
            make_ctx(
                url=f"http://127.0.0.1:{port}/health", rate=40, window="3s", max_error_rate=0.1
            )
        )
        (result,) = asyncio.run(_look(probe, 2.5))
    finally:
        fault.revert()
    assert result.ok is False  # type: ignore[attr-defined]
    share = result.value  # type: ignore[attr-defined]
    assert isinstance(share, float) and 0.2 <= share <= 0.8
    clean = ErrorRateProbe(
        make_ctx(
            url=f"http://127.0.0.1:{demo_port}/health", rate=40, window="2s", max_error_rate=0.1
        )
    )
    (after,) = asyncio.run(_look(clean, 1.0))
    assert after.ok is True and after.value == 0.0  # type: ignore[attr-defined]


def test_latency_probe_reports_the_added_latency(demo_port: int, make_ctx: MakeCtx) -> None:
    port = free_port()
    fault = HttpFaultsFault(
        make_ctx(upstream=f"127.0.0.1:{demo_port}", listen_port=port, latency="300ms")
    )
    fault.resolve()
    fault.inject()
    try:
        probe = LatencyProbe(
            make_ctx(url=f"http://127.0.0.1:{port}/health", rate=10, window="3s", max="200ms")
        )
        (result,) = asyncio.run(_look(probe, 1.5))
    finally:
        fault.revert()
    assert result.ok is False  # type: ignore[attr-defined]
    assert result.value >= 0.3  # type: ignore[attr-defined]


def test_a_window_without_enough_requests_fails(make_ctx: MakeCtx) -> None:
    # Nothing listens on the port: every request fails; with min_requests above what a short
    # look can gather the probe says "not enough evidence", never "ok".
    probe = ErrorRateProbe(
        make_ctx(
            url=f"http://127.0.0.1:{free_port()}/",
            rate=2,
            window="1s",
            max_error_rate=1.0,
            min_requests=50,
        )
    )
    (result,) = asyncio.run(_look(probe, 0.1))
    assert result.ok is False and "not enough evidence" in result.detail  # type: ignore[attr-defined]


def test_slo_probe_needs_its_bound() -> None:
    with pytest.raises(ConfigError, match="max_error_rate"):
        ErrorRateProbe(Context(params={"url": "http://127.0.0.1:1/"}))
    with pytest.raises(ConfigError, match="max"):
        LatencyProbe(Context(params={"url": "http://127.0.0.1:1/"}))


HOLD = """\
id: h
shape: hold
{extra}
fault: {{type: http.faults, upstream: "127.0.0.1:1", listen_port: 20000, {params}}}
probes:
  - {{name: e, type: slo.error_rate, url: "http://127.0.0.1:1/", max_error_rate: 0.05}}
"""


@pytest.mark.parametrize(
    ("extra", "params", "message"),
    [
        ("", "error_rate: 0.5", "needs `duration:`"),
        ("duration: 5s\nrecovery: [{kind: automatic}]", "error_rate: 0.5", "no recovery steps"),
        ("duration: 5s", "error_rate: 1.5", "error_rate"),
        ("duration: 5s", "error_rate: 0.5, bogus: 1", "bogus"),
        ("duration: 5s", "status: 503", "error_rate"),  # no fault at all: anyOf
    ],
)
def test_bad_hold_scenarios_are_refused_with_the_field(
    tmp_path: Path, extra: str, params: str, message: str
) -> None:
    path = tmp_path / "h.yaml"
    path.write_text(HOLD.format(extra=extra, params=params))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, registry=get_registry())
    assert message in str(info.value) or message in repr(info.value.__dict__)


def test_hold_scenario_loads(tmp_path: Path) -> None:
    path = tmp_path / "h.yaml"
    path.write_text(HOLD.format(extra="duration: 5s\nexpect: failed", params="error_rate: 0.5"))
    scenario = load_scenario(path)
    assert (scenario.shape, scenario.hold_s, scenario.expect) == ("hold", 5.0, "failed")


BREACH = textwrap.dedent(
    """\
    environment: test
    defaults: {probe_interval: 200ms, stable_for: 500ms, probe_timeout: 2s}
    targets:
      svc:
        backend: local
        command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
        port: auto
        restart: never
    """
)


def test_a_breached_hold_fails_with_time_and_value_and_reverts_at_once(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", drillbook=BREACH)
    pytester.mkdir("scenarios")
    (pytester.path / "scenarios" / "breach.yaml").write_text(
        textwrap.dedent(
            """\
            id: breach
            shape: hold
            duration: 60s
            timeout: 2m
            fault: {type: http.faults, target: svc, error_rate: 0.6, ttl: 5m}
            probes:
              - {name: errors, type: slo.error_rate, target: svc, rate: 20, window: 2s, max_error_rate: 0.05}
            """
        )
    )
    pytester.makepyfile(
        test_drills="def test_scenario(drill_scenario, drill):\n    drill.run(drill_scenario)\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(failed=1)
    import json

    journal = json.loads((pytester.path / "reports" / "latest" / "journal.json").read_text())
    (drill,) = journal["drills"]
    assert drill["verdict"] == "failed"
    hold = drill["hold"]
    assert hold["breach"]["probe"] == "errors" and hold["breach"]["value"] > 0.05
    assert hold["held_s"] < 30  # the 60 s hold ended at the breach, not at its end
    assert hold["return_s"] is not None
    assert any("slo_held" in r and "breached" in r for r in drill["reasons"])
    assert drill["reverts"][0]["ok"] is True
    assert not (pytester.path / ".drillbook" / "local" / "svc.route").exists()
    svc = json.loads((pytester.path / ".drillbook" / "local" / "svc.json").read_text())
    import os
    import signal

    for key in ("child_pid", "supervisor_pid"):
        pid = svc.get(key)
        if isinstance(pid, int):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
