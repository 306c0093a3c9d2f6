"""The crash-matrix machinery, shared by tests/reliability and benchmarks/crash_matrix.py.

A trial builds a throwaway project (drillbook.yaml, one scenario, drills/, and a conftest.py that
pauses the harness at a chosen phase), starts the target, runs the harness — a real
``python -m pytest drills/`` with the drillbook plugin, i.e. what ``drillbook run`` runs — waits
until it reports being paused at the phase, sends it a signal, and then checks the outcome:

* SIGKILL: nothing inside the harness can run, so ``drillbook rollback`` (a new process) must
  rebuild the fault from the intent ledger and revert it;
* SIGINT / SIGTERM / SIGHUP: the harness itself must revert before it exits; no rollback is run.

Either way the target must be healthy again and the intent ledger must hold nothing pending.

Every cell can fail. Each cell's fault is one its target does not undo by itself (``process.stop``;
``process.kill`` on a service whose supervisor does not restart it; ``docker.stop`` on a container
with restart policy "no"), and each cell has an independent check of the target (HTTP and /proc,
the Docker SDK, psycopg, the plain kubernetes client, boto3; never drillbook's own journal or
probes). While the harness is paused the check must see what the phase implies: at ``intent`` the
target untouched and the intent already on disk (write-ahead); at every later phase the fault in
force. At ``revert`` the recovery step is withheld (it fails at once, as a failed recovery does),
so the engine's revert, and after SIGKILL ``drillbook rollback``, meets the fault in force.

The pause is test-only and lives entirely in the project's conftest.py: it wraps the registered
fault and recovery step (never the engine) so the harness blocks right after the intent is
written (inside ``inject`` before the real inject), right after inject (``verify_injected``
passed, state already in the ledger), during recovery (inside the scripted step), or during revert
(inside ``revert`` before the real revert). ``mid_inject`` pauses after the real inject but before
``inject`` returns, i.e. before the engine has written ``fault.state()`` to the ledger.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from signalkit import default_signals

__all__ = [
    "CELLS",
    "PHASES",
    "SIGNALS",
    "Cell",
    "Project",
    "TrialResult",
    "availability",
    "make_project",
    "run_trial",
]

REPO = Path(__file__).resolve().parents[2]
PHASES = ("intent", "inject", "recovery", "revert")
EXTRA_PHASES = ("mid_inject",)
#: Phases at which the fault is in force, so the cell's independent check must fail there (at
#: ``revert`` because the trial withholds the recovery step). At ``intent`` it must pass instead,
#: with the intent already in the ledger.
BROKEN_AT = ("inject", "recovery", "revert", "mid_inject")
SIGNALS: Mapping[str, signal.Signals] = {
    "SIGKILL": signal.SIGKILL,
    "SIGINT": signal.SIGINT,
    "SIGTERM": signal.SIGTERM,
    "SIGHUP": signal.SIGHUP,
}

PAUSE_CONFTEST = '''\
"""Test-only: pause this harness at one drill phase (DRILLBOOK_TEST_PAUSE_AT)."""
import dataclasses
import os
import time
from pathlib import Path

from drillbook.backends.base import get_registry

PAUSE = os.environ.get("DRILLBOOK_TEST_PAUSE_AT", "")
MARKER = Path(os.environ.get("DRILLBOOK_TEST_MARKER", "/nonexistent/marker"))
FAULT = os.environ.get("DRILLBOOK_TEST_FAULT", "")
STEP = os.environ.get("DRILLBOOK_TEST_STEP", "")


def _pause(phase):
    if PAUSE != phase or MARKER.exists():
        return  # each trial pauses once, so a revert retried after a signal goes through
    MARKER.write_text(f"{os.getpid()} {phase}")
    end = time.monotonic() + 120
    while time.monotonic() < end:
        time.sleep(0.05)


def _wrap_fault(factory):
    def make(ctx):
        fault = factory(ctx)
        inject, verify, revert = fault.inject, fault.verify_injected, fault.revert

        def paused_inject():
            _pause("intent")
            inject()
            _pause("mid_inject")

        def paused_verify():
            ok = verify()
            if ok:
                _pause("inject")
            return ok

        def paused_revert():
            _pause("revert")
            revert()

        fault.inject, fault.verify_injected, fault.revert = paused_inject, paused_verify, paused_revert
        return fault

    return make


def _wrap_step(factory):
    def make(ctx):
        step = factory(ctx)
        run = step.run

        def paused_run():
            _pause("recovery")
            if PAUSE == "revert":
                # Withhold recovery, so the revert this trial pauses in meets the fault in force.
                raise RuntimeError("crash matrix: recovery withheld for a revert-phase trial")
            return run()

        step.run = paused_run
        return step

    return make


_reg = get_registry()
if FAULT in _reg.faults:
    _reg.faults[FAULT] = dataclasses.replace(
        _reg.faults[FAULT], factory=_wrap_fault(_reg.faults[FAULT].factory)
    )
if STEP in _reg.recoveries:
    _reg.recoveries[STEP] = dataclasses.replace(
        _reg.recoveries[STEP], factory=_wrap_step(_reg.recoveries[STEP].factory)
    )
'''


@dataclass(frozen=True)
class Cell:
    """One row of the matrix: a backend, a fault, the step that recovers from it, the target.

    ``target_yaml`` may hold ``@PORT@`` (a free port chosen per project, also used to name the
    project's own resources); ``probe_yaml`` is the scenario's health probe. Local targets are
    started by the test and must be healthy before a trial. docker, postgres, kubernetes and aws
    targets are created by the test (``start_target``) before the first trial, so the harness
    finds them and leaves them alone, and each trial is judged on them directly.
    """

    name: str
    backend: str
    fault: str
    step: str
    target_yaml: str
    fault_params: str = ""
    probe_yaml: str = "{name: health, type: http, target: demo, timeout: 500ms}"
    step_params: str = ""
    extra_yaml: str = ""  # more targets (indented) and a backends section, after ``demo``


LOCAL_TARGET = (
    '{backend: local, command: ["{python}", "-m", "drillbook.backends.local.demo_service", '
    '"--port", "{port}"], port: auto, health: /health, restart: always, restart_delay: 200ms}'
)
#: For process.kill: a supervisor that restarts the service would undo the fault by itself, and
#: a trial could then hardly fail. Only the recovery step, the revert or rollback start it again.
LOCAL_TARGET_NO_RESTART = LOCAL_TARGET.replace("restart: always", "restart: never")

#: A container the test creates (restart policy "no", so nothing but drillbook starts it again)
#: and removes; the harness only drills it, so it is still there to be checked after any signal.
DOCKER_TARGET = '{backend: docker, container: "drillbook-crash-@PORT@"}'

CELLS: tuple[Cell, ...] = (
    Cell("local/process.stop", "local", "process.stop", "process.continue", LOCAL_TARGET),
    Cell(
        "local/process.kill",
        "local",
        "process.kill",
        "process.start",
        LOCAL_TARGET_NO_RESTART,
        ", signal: KILL",
    ),
    Cell(
        "docker/docker.stop",
        "docker",
        "docker.stop",
        "docker.start",
        DOCKER_TARGET,
        probe_yaml="{name: port, type: tcp, host: 127.0.0.1, port: @PORT@, timeout: 500ms}",
    ),
)
PG_ROOT = "/tmp/drillbook-crashpg-@PORT@"  # outside pytest's 0700 tree: the server's user reads it
K8S_NS = "dbk-crash-@PORT@"
AWS_ZONE = "crash-@PORT@.drillbook.test."
AWS_RECORD = "db." + AWS_ZONE

NEW_CELLS: tuple[Cell, ...] = (
    # db_restore's pair: SIGKILL the primary and delete its data folder; base backup + WAL.
    Cell(
        "postgres/postgres.destroy_data",
        "postgres",
        "postgres.destroy_data",
        "postgres.restore_base_backup",
        f'{{backend: postgres, sandbox: region-a, root: "{PG_ROOT}"}}',
        probe_yaml='{name: accounts, type: sql, target: demo, query: "SELECT count(*) FROM '
        'accounts", expected: 1000}',
        step_params=", to: latest",
    ),
    # namespace_isolation's pair: a deny-all NetworkPolicy on the real apiserver; delete it.
    Cell(
        "kubernetes/k8s.isolate",
        "kubernetes",
        "k8s.isolate",
        "k8s.delete_network_policy",
        f"{{backend: kubernetes, context: drillbook-local, namespace: {K8S_NS}, "
        "selector: app=drill-demo, deployment: drill-demo, service: drill-demo, replicas: 3}",
        probe_yaml="{name: client reaches demo, type: k8s.traffic_allowed, target: demo, "
        "from_labels: {role: client}, port: 8080}",
        extra_yaml=(
            "backends:\n  kubernetes: {allowed_contexts: [drillbook-local], "
            f"allowed_namespaces: [{K8S_NS}], opt_in_label: drillbook.io/drills=allowed}}\n"
        ),
    ),
    # db_restore_rds's pair on moto: stop the instance; restore the newest snapshot into a new
    # instance and repoint the CNAME. The fault's revert starts the stopped instance. The moto
    # server is the project's own, on the project's port (see _aws_start).
    Cell(
        "aws/rds.stop",
        "aws",
        "rds.stop",
        "rds.restore_snapshot",
        "{backend: aws, region: us-east-1, id: dbk-crash-@PORT@}",
        probe_yaml="{name: db CNAME serves, type: aws.rds_available, target: dns, "
        f"record: {AWS_RECORD}, writable: true}}",
        step_params=f", repoint: {{zone: {AWS_ZONE}, record: {AWS_RECORD}}}",
        extra_yaml=(
            f"  dns: {{backend: aws, zone: {AWS_ZONE}}}\n"
            "backends:\n  aws: {endpoint_url: 'http://127.0.0.1:@PORT@', "
            'allowed_accounts: ["123456789012"], allowed_regions: [us-east-1], '
            "require_opt_in: true, opt_in_tag: drillbook:chaos=allowed}\n"
        ),
    ),
)
CELLS = CELLS + NEW_CELLS
DOCKER_HOST_DEFAULT = "unix:///run/drillbook-docker.sock"


def docker_env() -> dict[str, str]:
    host = os.environ.get("DOCKER_HOST") or (
        DOCKER_HOST_DEFAULT if Path(DOCKER_HOST_DEFAULT[7:]).exists() else ""
    )
    return {"DOCKER_HOST": host} if host else {}


def availability(cell: Cell) -> str | None:
    """None when the cell's backend can run here, else the one-line reason (for needs_backend).

    kubernetes needs the test cluster explicitly (never a developer's own): ``$KUBECONFIG``
    whose current context is ``drillbook-local``, as ``scripts/testenv up k8s`` exports it. aws
    runs on a moto server of the project's own (never real AWS), so it needs ``moto[server]``."""
    if cell.backend == "local":
        return None
    if cell.backend == "kubernetes" and not os.environ.get("KUBECONFIG"):
        return 'KUBECONFIG is not set (run: eval "$(scripts/testenv up k8s)")'
    if cell.backend == "aws":
        import importlib.util

        if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
            return "moto[server] is not installed (pip install 'moto[server]')"
        if importlib.util.find_spec("boto3") is None:
            return "boto3 is not installed"
        return None
    if cell.backend == "kubernetes":
        from drillbook.backends.kubernetes.client import read_identity
        from drillbook.errors import BackendUnavailable

        try:
            context = read_identity(None, None).context
        except BackendUnavailable as exc:
            return str(exc)
        if context != "drillbook-local":
            return f"current context is {context!r}, not the test cluster 'drillbook-local'"
    from drillbook.backends.base import get_registry

    info = get_registry().backends.get(cell.backend)
    if info is None:
        return "backend not registered"
    saved = {k: os.environ.get(k) for k in docker_env()}
    os.environ.update(docker_env())
    try:
        return info.available({})
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Project:
    root: Path
    cell: Cell
    port: int = 0

    @property
    def ledger(self) -> Path:
        return self.root / ".drillbook" / "intents.jsonl"

    def config(self) -> Any:
        from drillbook.config import Overrides, load_config

        return load_config(Overrides(config_path=self.root / "drillbook.yaml"), workdir=self.root)

    def service(self) -> Any:
        from drillbook.backends.local.service import LocalService

        cfg = self.config()
        return LocalService(cfg.target("demo"), cfg.state_dir, cfg.workdir)

    def pending(self) -> list[Any]:
        from drillbook.intents import IntentLedger

        return IntentLedger(self.ledger).pending()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_project(root: Path, cell: Cell) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (root / "drillbook.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: sandbox
            safety: {{max_targets: 1, max_percent: 100, fault_ttl: 10m}}
            targets:
              demo: {cell.target_yaml.replace("@PORT@", str(port))}
            """
        )
        + cell.extra_yaml.replace("@PORT@", str(port))
    )
    step_params = cell.step_params.replace("@PORT@", str(port))
    (root / "scenarios").mkdir(exist_ok=True)
    (root / "scenarios" / "crash.yaml").write_text(
        textwrap.dedent(
            f"""\
            id: crash
            description: crash-matrix trial ({cell.name})
            objectives: {{rto: 60s, severity: P2}}
            probe_interval: 100ms
            stable_for: 300ms
            timeout: 90s
            fault: {{type: {cell.fault}, target: demo, ttl: 10m{cell.fault_params}}}
            probes:
              - {cell.probe_yaml.replace("@PORT@", str(port))}
            recovery:
              - {{kind: scripted, name: recover, type: {cell.step}, target: demo{step_params}}}
            """
        )
    )
    (root / "drills").mkdir(exist_ok=True)
    shutil.copy(REPO / "drills" / "test_scenarios.py", root / "drills" / "test_scenarios.py")
    (root / "conftest.py").write_text(PAUSE_CONFTEST)
    return Project(root, cell, port)


@dataclass
class TrialResult:
    cell: str
    phase: str
    signal: str
    ok: bool
    harness_exit: int | None
    healthy: bool
    pending: int
    paused: bool
    rollback_exit: int | None = None
    detail: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    fault_seen: bool | None = None  # the independent check failed while paused (None: not asked)
    #: paused at ``intent``: the ledger held the pending intent and the target was untouched
    intent_logged: bool | None = None
    started_at: str = ""  # UTC, ISO 8601: when the trial began (the published "Runs" line)
    commit: str = ""  # the drillbook commit the trial ran (set by benchmarks/crash_matrix.py)


def _env(project: Project, phase: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DRILLBOOK_") or k == "DRILLBOOK_REQUIRE_BACKENDS"
    }
    env.update(
        DRILLBOOK_TEST_PAUSE_AT=phase,
        DRILLBOOK_TEST_MARKER=str(project.root / "paused.marker"),
        DRILLBOOK_TEST_FAULT=project.cell.fault,
        DRILLBOOK_TEST_STEP=project.cell.step,
        PYTHONUNBUFFERED="1",
    )
    if project.cell.backend == "docker":
        env.update(docker_env())
    if project.cell.backend == "aws":
        # The project's own moto takes any key; never hand the harness real AWS credentials.
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(key, None)
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
        )
    return env


def _docker_client() -> Any:
    import docker

    return docker.DockerClient(base_url=docker_env().get("DOCKER_HOST"))


def _docker_name(project: Project) -> str:
    return f"drillbook-crash-{project.port}"


def check_docker(project: Project) -> tuple[bool, str]:
    """The Docker SDK, not drillbook's: the container runs and its published port answers."""
    import socket

    try:
        status = _docker_client().containers.get(_docker_name(project)).status
    except Exception as exc:
        status = f"{type(exc).__name__}: {exc}"
    try:
        with socket.create_connection(("127.0.0.1", project.port), timeout=1.0):
            port = "open"
    except OSError as exc:
        port = f"closed ({exc})"
    return status == "running" and port == "open", f"container {status}, port {port}"


def _docker_start(project: Project) -> None:
    """Run the target container: drillbook's busybox httpd, the opt-in label, restart "no"."""
    from drillbook.backends.docker.images import ensure_image

    client = _docker_client()
    ensure_image(client, "drillbook/busybox:latest")
    _docker_stop(project)
    client.containers.run(
        "drillbook/busybox:latest",
        name=_docker_name(project),
        detach=True,
        init=True,
        labels={"drillbook.chaos": "allowed"},
        ports={"8080/tcp": ("127.0.0.1", project.port)},
        restart_policy={"Name": "no"},
    )
    ok, why = _poll(check_docker, project, 30.0)
    if not ok:
        raise RuntimeError(f"crash-matrix container not serving: {why}")


def _docker_stop(project: Project) -> None:
    try:
        _docker_client().containers.get(_docker_name(project)).remove(force=True)
    except Exception:
        pass


def check_local(project: Project) -> tuple[bool, str]:
    """HTTP straight to the service and /proc: it answers 200 and no process of it is stopped."""
    from drillbook.procs import process_state

    service = project.service()
    pids = service.pids()
    stopped = [p for p in pids if process_state(p) in ("T", "t")]
    if not pids:
        return False, "no process running"
    if stopped:
        return False, f"pids {stopped} stopped (SIGSTOP)"
    try:
        with urllib.request.urlopen(service.url(), timeout=1.0) as resp:
            return resp.status == 200, f"HTTP {resp.status}"
    except OSError as exc:
        return False, f"{type(exc).__name__}: {exc}"


Check = Callable[["Project"], tuple[bool, str]]


def _poll(check: Check, project: Project, wait_s: float) -> tuple[bool, str]:
    """``check`` until it passes or ``wait_s`` is over (a bound, never a timed assertion)."""
    deadline = time.monotonic() + wait_s
    while True:
        ok, why = check(project)
        if ok or time.monotonic() >= deadline:
            return ok, why
        time.sleep(0.2)


# -- postgres: the embedded sandbox, started by the test under its own root ---------------------
def _pg_root(project: Project) -> Path:
    return Path(PG_ROOT.replace("@PORT@", str(project.port)))


def check_postgres(project: Project) -> tuple[bool, str]:
    """Straight to the server, not through drillbook's probes: region-a has its data folder, is
    a primary (not in recovery), serves the router, and holds all the demo rows."""
    import psycopg

    from drillbook.backends.postgres.sandbox.state import dsn_for_port, load_state, read_router

    root = _pg_root(project)
    try:
        node = load_state(root)["nodes"]["region-a"]
        if not (Path(node["data_dir"]) / "PG_VERSION").exists():
            return False, f"no data folder at {node['data_dir']}"
        with psycopg.connect(dsn_for_port(int(node["port"])), autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery(), (SELECT count(*) FROM accounts)")
            in_recovery, rows = row.fetchone() or (None, None)
        router = read_router(root)
    except (OSError, KeyError, ValueError, psycopg.Error) as exc:
        return False, f"{type(exc).__name__}: {str(exc).strip()[:200]}"
    ok = in_recovery is False and rows == 1000 and router == "region-a"
    return ok, f"region-a in_recovery={in_recovery}, accounts={rows}, router={router}"


def _pg_start(project: Project) -> None:
    from drillbook.backends.postgres.sandbox import up

    up(_pg_root(project))


def _pg_stop(project: Project) -> None:
    from drillbook.backends.postgres.sandbox import down

    root = _pg_root(project)
    if root.exists():
        down(root)
    shutil.rmtree(root, ignore_errors=True)


# -- kubernetes: the demo workload in a namespace of the project's own, on the real apiserver ----
_K8S: dict[str, Any] = {}


def _k8s_api() -> tuple[Any, Any, Any]:
    """The plain kubernetes client (not drillbook's), for the independent check."""
    if "api" not in _K8S:
        from kubernetes import config

        _K8S["api"] = config.new_client_from_config(
            config_file=os.environ["KUBECONFIG"], context="drillbook-local"
        )
    from kubernetes import client

    api = _K8S["api"]
    return client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)


def _k8s_ns(project: Project) -> str:
    return K8S_NS.replace("@PORT@", str(project.port))


def check_kubernetes(project: Project) -> tuple[bool, str]:
    """Ask the apiserver: no NetworkPolicy left in the namespace, the Deployment available."""
    _, apps, net = _k8s_api()
    ns = _k8s_ns(project)
    try:
        policies = [p.metadata.name for p in net.list_namespaced_network_policy(ns).items]
        dep = apps.read_namespaced_deployment("drill-demo", ns)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {str(exc)[:200]}"
    available = int(dep.status.available_replicas or 0)
    return not policies and available >= 3, f"policies={policies}, available={available}/3"


def _k8s_start(project: Project) -> None:
    from drillbook.backends.kubernetes.client import connect
    from drillbook.backends.kubernetes.manifests import apply_manifests
    from drillbook.backends.kubernetes.prepare import demo_manifests
    from drillbook.backends.kubernetes.targets import KubeTarget
    from drillbook.model import TargetSpec

    core, _, _ = _k8s_api()
    ns = _k8s_ns(project)
    core.create_namespace({"metadata": {"name": ns, "labels": {"drillbook.io/drills": "allowed"}}})
    params = {"namespace": ns, "selector": "app=drill-demo", "deployment": "drill-demo"}
    target = KubeTarget.from_spec(
        TargetSpec("demo", "kubernetes", {**params, "service": "drill-demo", "replicas": 3})
    )

    def has_sa(_: Project) -> tuple[bool, str]:
        names = [a.metadata.name for a in core.list_namespaced_service_account(ns).items]
        return "default" in names, f"service accounts {names}"

    if not _poll(has_sa, project, 60.0)[0]:
        raise RuntimeError(f"no default ServiceAccount in {ns}")
    apply_manifests(connect(None, "drillbook-local"), demo_manifests(target))
    ok, why = _poll(check_kubernetes, project, 120.0)
    if not ok:
        raise RuntimeError(f"demo workload in {ns} not available: {why}")


def _k8s_stop(project: Project) -> None:
    try:
        _k8s_api()[0].delete_namespace(_k8s_ns(project))
    except Exception:
        pass


# -- aws on moto: one RDS instance, a snapshot and a zone, on a moto server of the project's own -
# Not the shared one from ``scripts/testenv up aws``: moto 5 tracks every RDS instance ever made
# (deleted ones too) for /moto-api/data.json, which then fails on a write-only property; testenv
# uses that URL as moto's liveness check, so one RDS instance would make it restart shared moto.
_MOTO: dict[int, subprocess.Popen[bytes]] = {}


def _aws(service: str, port: int) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _aws_names(project: Project) -> tuple[str, str, str]:
    """(instance id, zone, record)."""
    port = str(project.port)
    return f"dbk-crash-{port}", AWS_ZONE.replace("@PORT@", port), AWS_RECORD.replace("@PORT@", port)


def _aws_zone_id(project: Project) -> str | None:
    zone = _aws_names(project)[1]
    r53 = _aws("route53", project.port)
    for hz in r53.list_hosted_zones_by_name(DNSName=zone)["HostedZones"]:
        if hz["Name"] == zone:
            return str(hz["Id"]).rsplit("/", 1)[-1]
    return None


def _aws_restored(project: Project) -> list[str]:
    """Instances the recovery step restored from the project's snapshot (one per trial)."""
    db = _aws_names(project)[0]
    pages = _aws("rds", project.port).get_paginator("describe_db_instances").paginate()
    return [
        i["DBInstanceIdentifier"]
        for page in pages
        for i in page["DBInstances"]
        if i["DBInstanceIdentifier"].startswith(f"{db}-drill-")
    ]


def check_aws(project: Project) -> tuple[bool, str]:
    """Ask moto directly: the project's instance is available again."""
    db = _aws_names(project)[0]
    try:
        rds = _aws("rds", project.port)
        inst = rds.describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]
    except Exception as exc:
        return False, f"{type(exc).__name__}: {str(exc)[:200]}"
    status = inst.get("DBInstanceStatus")
    return status == "available", f"{db}: {status}"


def _aws_point_cname(project: Project) -> None:
    """Point the record at the project's instance, as before any drill."""
    db, _, record = _aws_names(project)
    rds = _aws("rds", project.port)
    address = rds.describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]["Endpoint"]
    change = {
        "Action": "UPSERT",
        "ResourceRecordSet": {
            "Name": record,
            "Type": "CNAME",
            "TTL": 60,
            "ResourceRecords": [{"Value": address["Address"]}],
        },
    }
    _aws("route53", project.port).change_resource_record_sets(
        HostedZoneId=_aws_zone_id(project), ChangeBatch={"Changes": [change]}
    )


def _aws_reset(project: Project) -> None:
    """Before a trial: drop the instances earlier trials' recovery step restored and repoint the
    record at the original, so the probe sees the fault again (the fault is never undone here)."""
    rds = _aws("rds", project.port)
    for restored in _aws_restored(project):
        rds.delete_db_instance(DBInstanceIdentifier=restored, SkipFinalSnapshot=True)
    _aws_point_cname(project)


def _moto_answers(project: Project) -> tuple[bool, str]:
    try:
        _aws("s3", project.port).list_buckets()
    except Exception as exc:
        return False, f"moto on {project.port}: {type(exc).__name__}"
    return True, "moto answers"


def _aws_start(project: Project) -> None:
    log = open(project.root / "moto.log", "wb")
    try:
        _MOTO[project.port] = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(project.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log.close()
    ok, why = _poll(_moto_answers, project, 30.0)
    if not ok:
        raise RuntimeError(why)
    db, zone, _ = _aws_names(project)
    rds = _aws("rds", project.port)
    rds.create_db_instance(
        DBInstanceIdentifier=db,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="drillbook",
        MasterUserPassword="crash-matrix-only",
        AllocatedStorage=20,
        Tags=[{"Key": "drillbook:chaos", "Value": "allowed"}],
    )
    rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=f"{db}-snap")
    _aws("route53", project.port).create_hosted_zone(Name=zone, CallerReference=db)
    _aws_point_cname(project)


def _aws_stop(project: Project) -> None:
    """Everything lived in the project's own moto: stopping it removes it all."""
    proc = _MOTO.pop(project.port, None)
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


#: The independent check of each backend's target (one look; ``healthy`` polls it).
CHECKS: Mapping[str, Check] = {
    "local": check_local,
    "docker": check_docker,
    "postgres": check_postgres,
    "kubernetes": check_kubernetes,
    "aws": check_aws,
}
STARTS: Mapping[str, Callable[[Project], None]] = {
    "local": lambda project: project.service().start(),
    "docker": _docker_start,
    "postgres": _pg_start,
    "kubernetes": _k8s_start,
    "aws": _aws_start,
}
STOPS: Mapping[str, Callable[[Project], None]] = {
    "docker": _docker_stop,
    "postgres": _pg_stop,
    "kubernetes": _k8s_stop,
    "aws": _aws_stop,
}


def healthy(project: Project, wait_s: float = 10.0) -> tuple[bool, str]:
    """The cell's independent check passes within ``wait_s`` (a bound, not a timed assertion)."""
    return _poll(CHECKS[project.cell.backend], project, wait_s)


def start_target(project: Project) -> None:
    STARTS[project.cell.backend](project)


def reset_target(project: Project) -> None:
    """Before each trial: undo what a previous trial's *recovery step* legitimately changed."""
    if project.cell.backend == "aws":
        _aws_reset(project)


def stop_target(project: Project) -> None:
    if project.cell.backend in STOPS:
        STOPS[project.cell.backend](project)
        return
    service = project.service()
    from drillbook.procs import process_state

    for pid in service.pids():  # never leave a stopped child behind a test
        if process_state(pid) in ("T", "t"):
            os.kill(pid, signal.SIGCONT)
    service.stop()


def run_rollback(project: Project, in_process: bool = True) -> tuple[int, str]:
    """``drillbook rollback`` for the project: in this process (a different process from the
    killed harness, which is what matters) or as a fresh subprocess."""
    if in_process:
        import contextlib
        import io

        from drillbook.cli import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(["--config", str(project.root / "drillbook.yaml"), "rollback"])
        return code, out.getvalue().strip()
    proc = subprocess.run(
        [sys.executable, "-m", "drillbook.cli", "--config", "drillbook.yaml", "rollback"],
        cwd=project.root,
        env=_env(project, ""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def run_trial(
    project: Project,
    phase: str,
    sig: str,
    timeout: float = 90.0,
    rollback_in_process: bool = True,
    settle_s: float = 10.0,
) -> TrialResult:
    """One trial: harness paused at ``phase`` gets ``sig``; then judge the target and ledger."""
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    marker = project.root / "paused.marker"
    marker.unlink(missing_ok=True)
    (project.root / "reports" / "latest").unlink(missing_ok=True)  # judge this run's journal only
    reset_target(project)
    ok_before, why = healthy(project, wait_s=15.0)
    if not ok_before:
        return TrialResult(
            project.cell.name,
            phase,
            sig,
            False,
            None,
            False,
            len(project.pending()),
            False,
            detail=f"target unhealthy before the trial: {why}",
            started_at=started_at,
        )
    log = open(project.root / "harness.log", "wb")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "drills/", "-k", "crash"],
            cwd=project.root,
            env=_env(project, phase),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=default_signals,
        )
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    paused = False
    while time.monotonic() < deadline and proc.poll() is None:
        if marker.exists():
            paused = True
            break
        time.sleep(0.02)
    fault_seen = None
    intent_logged = None
    if paused and phase in BROKEN_AT:
        # The independent check must see the fault while the harness is paused: otherwise a
        # "healthy afterwards" proves nothing.
        fault_seen = not CHECKS[project.cell.backend](project)[0]
    elif paused and phase == "intent":
        # Write-ahead: the intent is on disk before anything is touched, and nothing is yet.
        intent_logged = bool(project.pending()) and CHECKS[project.cell.backend](project)[0]
    if paused:
        os.kill(proc.pid, SIGNALS[sig])
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
        run_rollback(project)  # leave nothing behind for the next trial; this one has failed
        return TrialResult(
            project.cell.name,
            phase,
            sig,
            False,
            None,
            False,
            len(project.pending()),
            paused,
            detail=f"harness did not exit within {timeout:g}s after {sig}",
            started_at=started_at,
        )
    rollback_exit = None
    notes: list[str] = []
    if sig == "SIGKILL":
        in_process = rollback_in_process and project.cell.backend == "local"
        rollback_exit, out = run_rollback(project, in_process)
        notes.append(out[-300:])
    else:
        # A signal must be handled inside the harness: nothing may be left for rollback.
        pass
    is_healthy, why = healthy(project, wait_s=settle_s)
    pending = project.pending()
    ok = paused and is_healthy and not pending and (rollback_exit in (None, 0))
    ok = ok and (fault_seen if phase in BROKEN_AT else intent_logged) is True
    detail = why if is_healthy else f"target not back: {why}"
    if fault_seen is False:
        detail += f"; the independent check did not see the fault while paused at {phase}"
    if intent_logged is False:
        detail += "; paused at intent, the ledger held no pending intent or the target was touched"
    if pending:
        detail += f"; pending intents: {[(i.id, i.status) for i in pending]}"
    if not paused:
        tail = (project.root / "harness.log").read_text(errors="replace")[-600:]
        detail += f"; harness never paused at {phase} (exit {code}): {tail!r}"
    if pending:
        # Clean up for the next trial (the target has had time to settle); this trial has failed.
        run_rollback(project)
    if not is_healthy and project.cell.backend in ("local", "docker"):
        stop_target(project)
        start_target(project)
    return TrialResult(
        project.cell.name,
        phase,
        sig,
        ok,
        code,
        is_healthy,
        len(pending),
        paused,
        rollback_exit,
        detail,
        time.monotonic() - started,
        notes,
        fault_seen,
        intent_logged,
        started_at,
    )


def result_row(r: TrialResult) -> str:
    return json.dumps(r.__dict__, default=str)
