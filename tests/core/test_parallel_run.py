"""``drillbook run --parallel N``: drills on distinct targets run at once, two on one target one
after the other, and all of them land in one journal with one report and the serial exit code.
Real demo services, killed for real; overlap is read from the journal's own timestamps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

CONFIG = """\
environment: test
defaults: {probe_interval: 50ms, stable_for: 2s, probe_timeout: 1s}
targets:
"""
TARGET = """\
  {name}:
    backend: local
    command: ["{{python}}", "-m", "drillbook.backends.local.demo_service", "--port", "{{port}}"]
    port: auto
    restart: always
    restart_delay: 1s
"""
SCENARIO = """\
id: {id}
objectives: {{rto: 30s, severity: P2}}
fault: {{type: process.kill, target: {target}, signal: KILL}}
probes:
  - {{name: health, type: http, target: {target}}}
recovery:
  - {{kind: automatic}}
"""


def _project(root: Path, drills: dict[str, str]) -> list[str]:
    targets = sorted(set(drills.values()))
    (root / "drillbook.yaml").write_text(CONFIG + "".join(TARGET.format(name=t) for t in targets))
    (root / "scenarios").mkdir()
    paths = []
    for drill_id, target in drills.items():
        path = root / "scenarios" / f"{drill_id}.yaml"
        path.write_text(SCENARIO.format(id=drill_id, target=target))
        paths.append(str(path.relative_to(root)))
    return paths


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRILLBOOK_")}
    return subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "run", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_journal(root: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    (doc_path,) = [
        p for p in (root / "reports").glob("*/journal.json") if not p.parent.is_symlink()
    ]
    events = [json.loads(line) for line in (doc_path.parent / "events.jsonl").open()]
    return json.loads(doc_path.read_text()), events


def _at(events: list[dict[str, Any]], drill: str, kind: str) -> float:
    (mono,) = [e["mono_s"] for e in events if e["drill"] == drill and e["kind"] == kind]
    return float(mono)


def test_drills_on_two_targets_run_at_once_in_one_journal(tmp_path: Path) -> None:
    paths = _project(tmp_path, {"a_kill": "a", "b_kill": "b"})
    done = _run(tmp_path, "--parallel", "2", *paths)
    assert done.returncode == 0, done.stdout + done.stderr
    doc, events = _one_journal(tmp_path)
    assert sorted(d["id"] for d in doc["drills"]) == ["a_kill", "b_kill"]
    assert all(d["verdict"] == "passed" for d in doc["drills"])
    # Each fault is injected before the other drill has ended: their fault windows overlap.
    a_in, b_in = _at(events, "a_kill", "inject"), _at(events, "b_kill", "inject")
    a_end, b_end = _at(events, "a_kill", "drill_end"), _at(events, "b_kill", "drill_end")
    assert a_in < b_end and b_in < a_end
    assert [e["seq"] for e in events] == list(range(len(events)))  # one unbroken chain
    assert "a_kill" in done.stdout and "b_kill" in done.stdout and "PASSED" in done.stdout


def test_two_drills_on_one_target_do_not_overlap(tmp_path: Path) -> None:
    paths = _project(tmp_path, {"a_first": "a", "a_second": "a", "b_kill": "b"})
    done = _run(tmp_path, "--parallel", "3", *paths)
    assert done.returncode == 0, done.stdout + done.stderr
    doc, events = _one_journal(tmp_path)
    assert sorted(d["id"] for d in doc["drills"]) == ["a_first", "a_second", "b_kill"]
    assert "took over" not in done.stderr and "being drilled by" not in done.stdout
    # File order on a shared target: the second takes the lock only after the first ended,
    # while the drill on the other target ran beside the first.
    assert _at(events, "a_first", "drill_end") < _at(events, "a_second", "lock")
    assert _at(events, "b_kill", "inject") < _at(events, "a_first", "drill_end")


def test_parallel_is_for_scenario_files_and_needs_a_positive_count(tmp_path: Path) -> None:
    paths = _project(tmp_path, {"a_kill": "a"})
    for args in (["--parallel", "0", *paths], ["--parallel", "2", "drills/"]):
        done = _run(tmp_path, *args)
        assert done.returncode == 2, done.stderr
        assert "--parallel" in done.stderr
    assert not (tmp_path / "reports").exists()  # refused before anything ran
