"""The crash path: a harness SIGKILLed right after draining a node; ``drillbook rollback`` (a new
process that knows only the intent ledger and drillbook.yaml) uncordons it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import yaml
from k8s_kit import KubeEnv, T, settings_for, target_params, wait_for

from drillbook.cli import main as drillbook
from drillbook.intents import IntentLedger

HARNESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from drillbook.config import Overrides, load_config
    from drillbook.engine import Drill
    from drillbook.model import FaultSpec

    path = Path(sys.argv[1])
    cfg = load_config(Overrides(config_path=path), workdir=path.parent)
    drill = Drill("crash_drain", cfg)
    spec = FaultSpec(
        type="k8s.drain_node",
        params={"node": sys.argv[2], "eviction_timeout": "60s"},
        targets=("crash",),
        ttl_s=float(sys.argv[3]) if len(sys.argv) > 3 else 600.0,
    )
    drill.inject(spec)
    print("INJECTED", flush=True)
    time.sleep(600)
    """
)


def test_rollback_uncordons_after_the_harness_is_killed(
    kube_env: KubeEnv, demo: str, tmp_path: Path
) -> None:
    kube = kube_env.kube
    pods = kube.core.list_namespaced_pod(demo, label_selector="app=demo", _request_timeout=T).items
    node = sorted(p.spec.node_name for p in pods)[0]
    config = {
        "environment": "sandbox",
        "state_dir": str(tmp_path / "state"),
        "targets": {"crash": {"backend": "kubernetes", **target_params(demo)}},
        "backends": {"kubernetes": settings_for(kube_env, [demo])},
    }
    cfg_path = tmp_path / "drillbook.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    (tmp_path / "harness.py").write_text(HARNESS)
    env = {**os.environ, "DRILLBOOK_NO_WATCHDOG": "1"}  # only the reaper may undo it here
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "harness.py"), str(cfg_path), node],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        wait_for(
            "the harness to inject", lambda: "INJECTED\n" in lines or proc.poll() is not None, 120
        )
        assert "INJECTED\n" in lines, "".join(lines)
        assert kube.core.read_node(node, _request_timeout=T).spec.unschedulable
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    ledger = IntentLedger(tmp_path / "state" / "intents.jsonl")
    (pending,) = ledger.pending()
    assert pending.fault_type == "k8s.drain_node"
    assert pending.state["nodes"][0]["name"] == node  # what revert needs, and no secret
    kubeconfig = yaml.safe_load(Path(kube_env.kubeconfig).read_text())
    secret = kubeconfig["users"][0]["user"]["token"]
    assert secret not in (tmp_path / "state" / "intents.jsonl").read_text()

    assert drillbook(["--config", str(cfg_path), "rollback"]) == 0
    assert not kube.core.read_node(node, _request_timeout=T).spec.unschedulable
    assert ledger.pending() == []
    # A second rollback finds nothing to do and changes nothing.
    assert drillbook(["--config", str(cfg_path), "rollback"]) == 0


def test_the_watchdog_alone_uncordons_after_the_harness_is_killed(
    kube_env: KubeEnv, demo: str, tmp_path: Path
) -> None:
    """The same crash with the watchdog on (the default) and nobody else acting: at the fault's
    TTL the watchdog uncordons the node, and the ledger says who did."""
    kube = kube_env.kube
    pods = kube.core.list_namespaced_pod(demo, label_selector="app=demo", _request_timeout=T).items
    node = sorted(p.spec.node_name for p in pods)[0]
    config = {
        "environment": "sandbox",
        "state_dir": str(tmp_path / "state"),
        "targets": {"crash": {"backend": "kubernetes", **target_params(demo)}},
        "backends": {"kubernetes": settings_for(kube_env, [demo])},
    }
    cfg_path = tmp_path / "drillbook.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    (tmp_path / "harness.py").write_text(HARNESS)
    env = {k: v for k, v in os.environ.items() if k != "DRILLBOOK_NO_WATCHDOG"}
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "harness.py"), str(cfg_path), node, "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        wait_for(
            "the harness to inject", lambda: "INJECTED\n" in lines or proc.poll() is not None, 120
        )
        assert "INJECTED\n" in lines, "".join(lines)
        assert kube.core.read_node(node, _request_timeout=T).spec.unschedulable
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    wait_for(
        "the watchdog to uncordon the node",
        lambda: not kube.core.read_node(node, _request_timeout=T).spec.unschedulable,
        120,
    )
    ledger = IntentLedger(tmp_path / "state" / "intents.jsonl")
    assert ledger.pending() == []
    (done,) = ledger.archived().values()
    assert done.status == "reverted" and done.fault_type == "k8s.drain_node"
    assert '"by":"ttl-watchdog"' in ledger.archive_path.read_text()
