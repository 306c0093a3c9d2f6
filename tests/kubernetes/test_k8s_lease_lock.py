"""Target locks held as Kubernetes Leases on the real test apiserver: a second runner is refused
naming the holder, a live holder's renewals keep its lease past the duration, a holder killed
with SIGKILL is taken over once its lease's own duration has run out, and a clean release deletes
the lease. The config and naming checks need no cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from k8s_kit import KubeEnv, T, make_namespace

from drillbook.config import Overrides, load_config
from drillbook.errors import ConfigError
from drillbook.locks import Holder, TargetBusy
from drillbook.locks_k8s import LeaseArbiter, LeaseSettings, lease_name
from drillbook.locks_pg import arbiter_for


def _holder(run_id: str) -> Holder:
    return Holder.me(run_id, "drill-a", time.time(), 600)


def test_lease_names_are_valid_and_distinct() -> None:
    import re

    names = {
        t: lease_name(t)
        for t in ("svc", "Svc", "svc_1", "svc-1", "a/b", "x" * 100, "x" * 101, "--")
    }
    assert names["svc"] == "drillbook-svc"
    assert len(set(names.values())) == len(names)  # no two targets share a lease
    for name in names.values():
        assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name


def test_safety_lock_chooses_the_lease_arbiter_and_bad_settings_say_where(tmp_path: Path) -> None:
    cfg_file = tmp_path / "drillbook.yaml"
    cfg_file.write_text(
        "safety:\n  lock:\n    kubernetes:\n      namespace: drill-locks\n"
        "      context: drillbook-local\n      lease_duration: 5\n"
    )
    cfg = load_config(Overrides(config_path=cfg_file), workdir=tmp_path)
    arbiter = arbiter_for(cfg)
    assert isinstance(arbiter, LeaseArbiter)
    assert arbiter.settings == LeaseSettings("drill-locks", "drillbook-local", None, 5)
    cfg_file.write_text("safety:\n  lock:\n    kubernetes:\n      namespace: Bad_NS\n")
    with pytest.raises(ConfigError, match=r"safety\.lock\.kubernetes\.namespace.*DNS label"):
        load_config(Overrides(config_path=cfg_file), workdir=tmp_path)
    cfg_file.write_text("safety:\n  lock:\n    kubernetes:\n      namespace: ok\n      ttl: 3\n")
    with pytest.raises(ConfigError, match=r"safety\.lock\.kubernetes\.ttl.*unknown key"):
        load_config(Overrides(config_path=cfg_file), workdir=tmp_path)
    cfg_file.write_text("safety:\n  lock: {etcd: {}}\n")
    with pytest.raises(ConfigError, match=r"safety\.lock.*kubernetes"):
        load_config(Overrides(config_path=cfg_file), workdir=tmp_path)


@pytest.fixture
def lock_ns(kube_env: KubeEnv) -> Iterator[str]:
    name = make_namespace(kube_env.kube)
    yield name
    kube_env.kube.core.delete_namespace(name, _request_timeout=T)


def _arbiter(env: KubeEnv, ns: str, duration: int) -> LeaseArbiter:
    return LeaseArbiter(LeaseSettings(ns, env.context, env.kubeconfig, duration, 0.5))


def _lease_exists(env: KubeEnv, ns: str, name: str) -> bool:
    leases = env.kube.custom.list_namespaced_custom_object(
        "coordination.k8s.io", "v1", ns, "leases", _request_timeout=T
    )
    return name in {item["metadata"]["name"] for item in leases["items"]}


def test_a_second_runner_is_refused_naming_the_holder_and_renewals_keep_the_lease(
    kube_env: KubeEnv, lock_ns: str
) -> None:
    first = _arbiter(kube_env, lock_ns, 2).acquire("svc/a", _holder("run-a"))
    second = _arbiter(kube_env, lock_ns, 2)  # another runner: its own client, same apiserver
    with pytest.raises(TargetBusy) as refused:
        second.acquire("svc/a", _holder("run-b"))
    assert "target 'svc/a' is being drilled by run run-a" in str(refused.value)
    assert f"pid {os.getpid()} on {os.uname().nodename}" in str(refused.value)
    second.acquire("svc/b", _holder("run-b")).release()  # other targets are free
    time.sleep(2 * 2 + 1)  # past two lease durations: only renewals keep the holder's lease
    with pytest.raises(TargetBusy, match="run run-a"):
        second.acquire("svc/a", _holder("run-b"))
    first.release()
    assert not _lease_exists(kube_env, lock_ns, lease_name("svc/a"))  # a clean release deletes
    again = second.acquire("svc/a", _holder("run-b"))
    assert again.taken_over is None
    again.release()


def test_a_killed_holder_is_taken_over_after_its_lease_duration(
    kube_env: KubeEnv, lock_ns: str
) -> None:
    code = (
        "import sys, time\n"
        "from drillbook.locks import Holder\n"
        "from drillbook.locks_k8s import LeaseArbiter, LeaseSettings\n"
        "a = LeaseArbiter(LeaseSettings(sys.argv[1], sys.argv[2], sys.argv[3], 3, 0.5))\n"
        "lock = a.acquire('svc', Holder.me('run-k', 'd', time.time(), 600))\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, lock_ns, kube_env.context, kube_env.kubeconfig],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        arbiter = _arbiter(kube_env, lock_ns, 3)
        proc.send_signal(signal.SIGKILL)  # no release, no more renewals
        proc.wait(timeout=10)
        with pytest.raises(TargetBusy, match=f"run run-k .*pid {proc.pid} "):
            arbiter.acquire("svc", _holder("run-b"))  # its lease has not run out yet
        lock = None
        for _ in range(120):  # bounded; the lease runs out 3 s (+0.5 s margin) after its renewal
            try:
                lock = arbiter.acquire("svc", _holder("run-b"))
                break
            except TargetBusy:
                time.sleep(0.25)
        assert lock is not None, "the dead holder's lease never expired"
        assert lock.taken_over is not None and lock.taken_over.pid == proc.pid
        assert lock.taken_over.run_id == "run-k"
        lock.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_lease_taken_from_its_holder_is_reported_lost(kube_env: KubeEnv, lock_ns: str) -> None:
    """Someone deletes the Lease while the drill holds it (another runner could now take the
    target): the next renewal is refused and the lock says it is lost, so the drill aborts."""
    lock = _arbiter(kube_env, lock_ns, 2).acquire("svc/c", _holder("run-a"))
    try:
        assert lock.lost() is None
        kube_env.kube.custom.delete_namespaced_custom_object(
            "coordination.k8s.io", "v1", lock_ns, "leases", lease_name("svc/c"), _request_timeout=T
        )
        deadline = time.monotonic() + 30  # renewals every third of the 2 s duration
        while lock.lost() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        # 404 or 409, as the apiserver answers a replace of a deleted object: either way, not ours
        assert lock.lost() in {
            "lease renewal refused (HTTP 404)",
            "lease renewal refused (HTTP 409)",
        }
    finally:
        lock.release()
