"""The measures' edges through the whole engine, on real processes and a real HTTP server: a
relapse after recovery, an outage no probe saw, and a hung service whose first passing answer
came only when it resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from drillbook.backends import local
from drillbook.backends.base import Fault, Registry, Selection
from drillbook.backends.local.service import pid_alive
from drillbook.config import Config, Defaults, SafetySettings
from drillbook.engine import Drill
from drillbook.model import FaultSpec, Objectives, ProbeSpec, Scenario, TargetSpec, Verdict

# -- a real HTTP server whose health the test switches -------------------------------------------


class Switch:
    """The server's health, and what it answered: every 503 it served is counted."""

    def __init__(self) -> None:
        self.down = False
        self.served = 0
        self.served_down = 0
        self.arrivals: list[float] = []  # monotonic, when each request came in
        self.cond = threading.Condition()

    def wait_served(self, more_than: int, timeout_s: float = 30.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.served > more_than, timeout_s)

    def wait_served_down(self, more_than: int, timeout_s: float = 30.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.served_down > more_than, timeout_s)


@pytest.fixture
def server() -> Iterator[tuple[str, Switch]]:
    switch = Switch()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with switch.cond:
                down = switch.down
                switch.arrivals.append(time.monotonic())
                switch.served += 1
                switch.cond.notify_all()
                if down:
                    switch.served_down += 1
                    switch.cond.notify_all()
            self.send_response(503 if down else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/health", switch
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


class SwitchFault(Fault):
    """``test.switch``: turns the server's health off; ``outage`` says what inject does."""

    switch: Switch | None = None
    outage: str = "hold"  # hold: down until the test says; blip: one brief outage, unseen

    def resolve(self) -> Selection:
        return Selection(("server",), 1)

    def plan(self) -> str:
        return "503 the test server"

    def inject(self) -> None:
        switch = SwitchFault.switch
        assert switch is not None
        if SwitchFault.outage == "hold":
            switch.down = True
            return
        # A blip: down for a tenth of a second right after the server answered the look the
        # engine takes at t_inject (the first request after verify_injected() passed); the next
        # look is a probe interval (2 s) later.
        done = threading.Event()
        SwitchFault.blip_done = done
        SwitchFault.verified_at = None

        def looked_after_inject() -> bool:
            at = SwitchFault.verified_at
            return at is not None and any(a > at for a in switch.arrivals)

        def blip() -> None:
            with switch.cond:
                assert switch.cond.wait_for(looked_after_inject, 30)
            switch.down = True
            threading.Event().wait(0.1)
            switch.down = False
            done.set()

        threading.Thread(target=blip, daemon=True).start()

    blip_done: threading.Event | None = None
    verified_at: float | None = None

    def verify_injected(self) -> bool:
        if SwitchFault.verified_at is None:
            SwitchFault.verified_at = time.monotonic()  # t_inject is taken right after this
        return True

    def revert(self) -> None:
        if SwitchFault.switch is not None:
            SwitchFault.switch.down = False

    def verify_reverted(self) -> bool:
        return SwitchFault.switch is None or not SwitchFault.switch.down

    def state(self) -> Mapping[str, Any]:
        return {}


def _registry() -> Registry:
    reg = Registry()
    local.register(reg)
    reg.add_backend("test", lambda settings: None, "the test's own server")
    reg.add_fault("test.switch", "test", SwitchFault, help="503 the test server")
    return reg


def _config(workdir: Path, interval: float) -> Config:
    return Config(
        source="test",
        workdir=workdir,
        environment="test",
        targets={"server": TargetSpec("server", "test", {})},
        safety=SafetySettings(max_targets=1, max_percent=100, fault_ttl_s=300.0),
        defaults=Defaults(
            probe_interval_s=interval, probe_timeout_s=2.0, stable_for_s=0.3, timeout_s=60
        ),
        reports_dir=workdir / "reports",
        state_dir=workdir / ".drillbook",
    )


def _drill(tmp_path: Path, url: str, *, interval: float, **scenario: Any) -> Drill:
    spec = Scenario(id="edge", objectives=Objectives(rto_s=30.0), **scenario)
    drill = Drill("edge", _config(tmp_path, interval), registry=_registry(), scenario=spec)
    drill.watch(ProbeSpec("http", "health", {"url": url, "keepalive": False}))
    return drill


@pytest.fixture(autouse=True)
def _no_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILLBOOK_NO_WATCHDOG", "1")  # the fault lives in this process only


@pytest.mark.parametrize("allowed", [False, True])
def test_a_relapse_after_recovery_is_seen_and_fails_unless_allowed(
    tmp_path: Path, server: tuple[str, Switch], allowed: bool
) -> None:
    url, switch = server
    SwitchFault.switch, SwitchFault.outage = switch, "hold"
    drill = _drill(tmp_path, url, interval=0.05, **({"allow_relapse": True} if allowed else {}))
    drill.steady_state()
    drill.inject(FaultSpec("test.switch", {}, ("server",)))
    assert drill.await_detection()
    switch.down = False  # the recovery
    assert drill.await_recovery().recovered
    # Recovered and confirmed: now the service fails again while the drill still runs.
    with switch.cond:
        seen = switch.served_down
        switch.down = True
    switch.wait_served_down(seen)  # a probe saw it
    with switch.cond:
        switch.down = False
        served = switch.served
    switch.wait_served(served)  # the next look began, so the failing one is in the samples
    result = drill.finish()
    if allowed:
        assert result.verdict is Verdict.PASSED, result.reasons
        assert any(c["name"] == "no relapse" and c["ok"] for c in result.record["checks"])
    else:
        assert result.verdict is Verdict.FAILED  # main: passed, the relapse unseen
        assert any(r.startswith("no relapse: health failed again") for r in result.reasons)
    m = result.record["measures"]
    assert m["relapse_s"] is not None and m["relapse_s"] > m["rta_s"]
    assert m["relapse_probe"] == "health" and m["t_relapse"]
    assert any(e["kind"] == "relapse" for e in result.record["timeline"])


def test_an_outage_no_probe_saw_is_not_observed_not_a_recovery_time(
    tmp_path: Path, server: tuple[str, Switch]
) -> None:
    url, switch = server
    SwitchFault.switch, SwitchFault.outage = switch, "blip"
    drill = _drill(tmp_path, url, interval=2.0)  # a probe interval far longer than the outage
    drill.steady_state()
    drill.inject(FaultSpec("test.switch", {}, ("server",)))
    m = drill.await_recovery()
    assert SwitchFault.blip_done is not None and SwitchFault.blip_done.wait(30)
    result = drill.finish()
    assert switch.served_down == 0  # a real outage, and no probe saw it
    assert not m.detected and m.rta_s is None
    record = result.record["measures"]
    assert record["rta_s"] is None and record["rta_bracket_s"] is None
    assert record["outage_observed"] is False and record["t_recovered"] is None
    assert result.verdict is Verdict.FAILED
    assert any(r.startswith("rta<=rto: not observed") for r in result.reasons)
    assert any(e["kind"] == "not_observed" for e in result.record["timeline"])


# -- a hung service: SIGSTOP, SIGCONT by the runbook's command ---------------------------------

HANG_CONFIG = """\
environment: test
defaults: {probe_interval: 100ms, stable_for: 300ms, probe_timeout: 1s}
targets:
  svc:
    backend: local
    command: ["{python}", "-m", "drillbook.backends.local.demo_service", "--port", "{port}"]
    port: auto
    restart: never
"""
HANG_SCENARIO = """\
id: hang
objectives: {{rto: 1m}}
timeout: 1m
fault: {{type: process.stop, target: svc, ttl: 10m}}
probes:
  - {{name: health, type: http, target: svc, timeout: 1s}}
recovery:
  - kind: scripted
    name: resume after {delay}s
    type: command
    command: [{python}, -c, "{resume}"]
"""
# Sleep, then SIGCONT the frozen service: a probe started within the last second before it is
# still waiting for an answer (the kernel queued its connection) and gets it once resumed.
RESUME = (
    "import json, os, signal, time; time.sleep({delay}); "
    "os.kill(json.load(open('.drillbook/local/svc.json'))['child_pid'], signal.SIGCONT)"
)


@pytest.fixture
def hang_project(tmp_path: Path) -> Iterator[Path]:
    delay = 2.5
    (tmp_path / "drillbook.yaml").write_text(HANG_CONFIG)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "hang.yaml").write_text(
        HANG_SCENARIO.format(
            delay=delay, python=json.dumps(sys.executable), resume=RESUME.format(delay=delay)
        )
    )
    (tmp_path / "drills").mkdir()
    (tmp_path / "drills" / "test_scenarios.py").write_text(
        "def test_scenario(drill_scenario, drill):\n    drill.run(drill_scenario)\n"
    )
    yield tmp_path
    state = tmp_path / ".drillbook" / "local" / "svc.json"
    if state.exists():  # stop the service's supervisor the drill started
        data = json.loads(state.read_text())
        for key in ("child_pid", "supervisor_pid"):
            pid = data.get(key)
            if isinstance(pid, int) and pid_alive(pid):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)


def test_a_hung_service_is_recovered_no_earlier_than_it_resumed(hang_project: Path) -> None:
    """The first passing probe started while the service was still stopped and got its answer
    when it resumed: RTA used to be that probe's start, up to a probe timeout before the service
    could answer anything. RTA and the moment it is judged at are never before the SIGCONT."""
    out = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run", "--", "-p", "no:cacheprovider"],
        cwd=hang_project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    journal = json.loads((hang_project / "reports" / "latest" / "journal.json").read_text())
    (drill,) = journal["drills"]
    assert drill["verdict"] == "passed", out.stdout + out.stderr
    m = drill["measures"]
    t_inject = next(e["offset_s"] for e in drill["timeline"] if e["kind"] == "inject")
    (step,) = drill["steps"]
    resumed_no_earlier = step["start_s"] + 2.5  # the command slept 2.5 s before the SIGCONT
    assert t_inject + m["rta_s"] >= resumed_no_earlier
    assert m["rta_s"] == m["rta_bracket_s"][1]  # judged at the bracket's upper end
    # Dated by the answer of the first passing probe after t_inject, which came once resumed.
    late = next(
        e
        for e in drill["timeline"]
        if e["kind"] == "probe" and e["ok"] and e["offset_s"] > t_inject
    )
    assert late["end_offset_s"] >= resumed_no_earlier
    # (The inject event is logged a moment after t_inject itself, so this side only.)
    assert t_inject + m["rta_s"] >= late["end_offset_s"] - 1e-6
