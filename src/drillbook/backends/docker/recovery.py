"""Scripted recovery steps a container runbook names: restart, start, reconnect, re-create a
Compose service, roll back to the last good image, run a clean-up command.

Each step acts, then waits (bounded by ``timeout`` and the drill deadline) until the engine shows
the result, and returns one line for the timeline. The drill's probes, not the step, decide when
service is back: a step only has to have done its part.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from drillbook.backends.base import RecoveryStep
from drillbook.backends.docker.common import duration_param, is_running, wait_state
from drillbook.backends.docker.engine import client_for
from drillbook.backends.docker.faults_image import PREVIOUS_IMAGE_LABEL, image_id
from drillbook.backends.docker.faults_network import connect, networks_of
from drillbook.backends.docker.faults_storage import exec_shell
from drillbook.backends.docker.recreate import container_inspect, replace, start_if_needed
from drillbook.backends.docker.targets import (
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    label_filters,
    resolve_containers,
    resolve_target,
)
from drillbook.errors import RecoveryError

__all__ = [
    "ComposeUpStep",
    "ConnectStep",
    "ExecStep",
    "RestartStep",
    "RollbackImageStep",
    "StartStep",
]


class _DockerStep(RecoveryStep):
    name = "docker.step"

    @property
    def client(self) -> Any:
        return client_for(self.ctx.settings)

    def _containers(self) -> list[Any]:
        try:
            return resolve_containers(self.client, self.ctx.targets)
        except Exception as exc:
            raise RecoveryError(f"{self.name}: {exc}") from exc

    def _timeout(self) -> float:
        return duration_param(self.ctx, "timeout", 30.0)

    def _await_running(self, ref: str, label: str) -> None:
        if not wait_state(self.ctx, self.client, ref, is_running, self._timeout()):
            data = container_inspect(self.client, ref)
            status = (data or {}).get("State", {}).get("Status", "gone")
            raise RecoveryError(f"{self.name}: {label} is {status}, not running")


class RestartStep(_DockerStep):
    name = "docker.restart"

    def run(self) -> str:
        names = []
        for c in self._containers():
            self.client.api.restart(c.id, timeout=int(duration_param(self.ctx, "grace", 10.0)))
            self._await_running(c.id, str(c.name))
            names.append(str(c.name))
        return f"restarted {', '.join(names)}"


class StartStep(_DockerStep):
    name = "docker.start"

    def run(self) -> str:
        acted = []
        for c in self._containers():
            if start_if_needed(self.client, c.id):
                acted.append(str(c.name))
            self._await_running(c.id, str(c.name))
        return f"started {', '.join(acted)}" if acted else "already running"


class ConnectStep(_DockerStep):
    """Reconnect to ``network`` with ``aliases`` (default: the target's sandbox aliases)."""

    name = "docker.connect"

    def run(self) -> str:
        network = self.ctx.params.get("network")
        if not network:
            raise RecoveryError("docker.connect needs network")
        done = []
        for target in self.ctx.targets:
            aliases = self.ctx.params.get("aliases")
            if aliases is None:
                sandbox = target.params.get("sandbox") or {}
                aliases = sandbox.get("aliases") if isinstance(sandbox, Mapping) else None
            for c in resolve_target(self.client, target):
                if str(network) in networks_of(container_inspect(self.client, c.id)):
                    continue
                connect(self.client, c.id, str(network), {"aliases": list(aliases or [])})
                done.append(str(c.name))
        return f"connected {', '.join(done)} to {network}" if done else f"already on {network}"


class RollbackImageStep(_DockerStep):
    """Re-create each container from ``image``, or from the tag its bad rollout recorded."""

    name = "docker.rollback_image"

    def run(self) -> str:
        lines = []
        for c in self._containers():
            data = container_inspect(self.client, c.id)
            if data is None:
                raise RecoveryError(f"docker.rollback_image: {c.name} disappeared")
            labels = data["Config"].get("Labels") or {}
            good = self.ctx.params.get("image") or labels.get(PREVIOUS_IMAGE_LABEL)
            if not good:
                raise RecoveryError(
                    f"docker.rollback_image: no image given and {c.name} has no "
                    f"{PREVIOUS_IMAGE_LABEL} label"
                )
            try:
                good_id = image_id(self.client, str(good))
            except Exception as exc:
                raise RecoveryError(f"docker.rollback_image: image {good} not found") from exc
            if data.get("Image") == good_id:
                lines.append(f"{c.name} already on {good}")
                continue
            try:
                replace(
                    self.client,
                    data,
                    data,
                    image=str(good),
                    drop_labels=(PREVIOUS_IMAGE_LABEL,),
                    start=True,
                    grace_s=duration_param(self.ctx, "grace", 10.0),
                )
            except Exception as exc:
                raise RecoveryError(f"docker.rollback_image: {exc}") from exc
            self._await_running(str(c.name), str(c.name))
            lines.append(f"{c.name}: {data['Config']['Image']} -> {good}")
        return "rolled back " + "; ".join(lines)


class ExecStep(_DockerStep):
    """Run ``command`` (a string for ``sh -c``, or a list) in each container; exit 0 required."""

    name = "docker.exec"

    def run(self) -> str:
        command = self.ctx.params.get("command")
        if not command:
            raise RecoveryError("docker.exec needs command")
        script = command if isinstance(command, str) else " ".join(_quote(str(a)) for a in command)
        outs = []
        for c in self._containers():
            code, out = exec_shell(self.client, c.id, script)
            if code != 0:
                raise RecoveryError(f"docker.exec in {c.name} exited {code}: {out.strip()[:200]}")
            outs.append(f"{c.name}: ok")
        return f"ran {script!r}: " + ", ".join(outs)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=20, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


class ComposeUpStep(_DockerStep):
    """Re-create a Compose service from what its containers' labels say.

    With a ``docker compose`` CLI and the config files the labels name, it runs
    ``compose up -d --no-deps --force-recreate SERVICE`` as an operator would; otherwise each of
    the service's containers is re-created from its own inspect, from the tag it names.
    """

    name = "compose.up"

    def run(self) -> str:
        lines = []
        for target in self.ctx.targets:
            labels = label_filters(target) or {}
            project = labels.get(COMPOSE_PROJECT) or self.ctx.params.get("project")
            service = labels.get(COMPOSE_SERVICE) or self.ctx.params.get("service")
            if not project or not service:
                raise RecoveryError(
                    f"compose.up: target {target.name} names no compose project/service"
                )
            found = resolve_target(self.client, target)
            if not found:
                raise RecoveryError(
                    f"compose.up: no container of {project}/{service} is left to read its labels"
                )
            files = (found[0].labels or {}).get("com.docker.compose.project.config_files")
            workdir = (found[0].labels or {}).get("com.docker.compose.project.working_dir")
            cli = _compose_cli()
            if cli and files:
                lines.append(self._cli_up(cli, str(project), str(service), str(files), workdir))
                continue
            for c in found:
                data = container_inspect(self.client, c.id)
                if data is None:
                    continue
                replace(
                    self.client,
                    data,
                    data,
                    image=str(data["Config"]["Image"]),
                    start=True,
                    grace_s=duration_param(self.ctx, "grace", 10.0),
                )
                self._await_running(str(c.name), str(c.name))
                lines.append(f"re-created {c.name}")
        return "; ".join(lines)

    def _cli_up(
        self, cli: list[str], project: str, service: str, files: str, workdir: str | None
    ) -> str:
        args = [*cli, "-p", project]
        for f in files.split(","):
            args += ["-f", f]
        args += ["up", "-d", "--no-deps", "--force-recreate", service]
        env = dict(os.environ)
        proc = subprocess.run(
            args,
            cwd=workdir or None,
            env=env,
            capture_output=True,
            text=True,
            timeout=self._timeout(),
            check=False,
        )
        if proc.returncode != 0:
            raise RecoveryError(f"compose up {service} failed: {proc.stderr.strip()[-300:]}")
        return f"compose up {project}/{service}"
