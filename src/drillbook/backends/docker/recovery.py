"""Scripted recovery steps a container runbook names: restart, start, reconnect, re-create a
Compose service, roll back to the last good image, run a clean-up command.

Each step acts, then waits (bounded by ``timeout`` and the drill deadline) until the engine shows
the result, and returns one line for the timeline. The drill's probes, not the step, decide when
service is back: a step only has to have done its part.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
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
from drillbook.redact import redact_text

__all__ = [
    "ComposeUpStep",
    "ConnectStep",
    "ExecStep",
    "RestartStep",
    "RollbackImageStep",
    "StartStep",
    "compose_cli",
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
    return shlex.quote(arg)


def compose_cli(settings: Mapping[str, Any]) -> list[str] | None:
    """The Compose CLI to run: ``backends.docker.compose_command``, else ``docker compose`` (v2),
    else ``docker-compose`` (v1, Debian's package); None when there is none."""
    configured = settings.get("compose_command")
    if configured:
        argv = shlex.split(configured) if isinstance(configured, str) else list(configured)
        return [str(a) for a in argv]
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=20, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _engine_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """The CLI's environment, pointed at the engine drillbook itself talks to (engine.py)."""
    env = dict(os.environ)
    if settings.get("base_url"):
        env["DOCKER_HOST"] = str(settings["base_url"])
        tls = settings.get("tls")
        if tls is True:
            env["DOCKER_TLS_VERIFY"] = "1"
        elif isinstance(tls, Mapping) and tls.get("ca_cert"):
            raise RecoveryError(
                "compose.up: backends.docker.tls with separate certificate files cannot be "
                "handed to the Compose CLI; use a docker context (backends.docker.context)"
            )
    elif settings.get("context"):
        env["DOCKER_CONTEXT"] = str(settings["context"])
        env.pop("DOCKER_HOST", None)
    return env


class ComposeUpStep(_DockerStep):
    """Re-create a Compose service the way its runbook says: ``up -d`` for that service.

    With a Compose CLI and the config files the containers' labels name, it runs
    ``compose -p PROJECT -f FILE... up -d --no-deps --force-recreate --scale SERVICE=N SERVICE``
    in the project's working directory, as an operator would. ``--scale`` keeps the number of
    replicas the service has now: without it Compose v1 scales the service back to the file's
    count (one), removing replicas the drill did not touch. Without a CLI (or without the
    labels), each of the service's containers is re-created from its own inspect instead, and
    the step's line says so.
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
            found = self._service(str(project), str(service))
            if not found:
                raise RecoveryError(
                    f"compose.up: no container of {project}/{service} is left to read its labels"
                )
            files = (found[0].labels or {}).get("com.docker.compose.project.config_files")
            workdir = (found[0].labels or {}).get("com.docker.compose.project.working_dir")
            cli = compose_cli(self.ctx.settings)
            if cli and files:
                lines.append(
                    self._cli_up(cli, str(project), str(service), len(found), str(files), workdir)
                )
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
                why = "no Compose CLI" if not cli else "no config-files label"
                lines.append(f"re-created {c.name} from its inspect ({why})")
        return "; ".join(lines)

    def _service(self, project: str, service: str) -> list[Any]:
        """Every replica of the service (one-off ``run`` containers aside), sorted by name."""
        filters = {"label": [f"{COMPOSE_PROJECT}={project}", f"{COMPOSE_SERVICE}={service}"]}
        found = [
            c
            for c in self.client.containers.list(all=True, filters=filters)
            if (c.labels or {}).get("com.docker.compose.oneoff", "False") != "True"
        ]
        return sorted(found, key=lambda c: str(c.name))

    def _cli_up(
        self,
        cli: list[str],
        project: str,
        service: str,
        replicas: int,
        files: str,
        workdir: str | None,
    ) -> str:
        args = [*cli, "-p", project]
        for f in files.split(","):
            args += ["-f", f]
        up = ["up", "-d", "--no-deps", "--force-recreate", "--scale", f"{service}={replicas}"]
        args += [*up, service]
        try:
            proc = subprocess.run(
                args,
                cwd=workdir or None,
                env=_engine_env(self.ctx.settings),
                capture_output=True,
                text=True,
                timeout=self._timeout(),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RecoveryError(f"compose.up: {shlex.join(args)} timed out") from None
        except OSError as exc:
            raise RecoveryError(f"compose.up: {cli[0]} failed to start: {exc}") from None
        if proc.returncode != 0:
            tail = redact_text((proc.stderr or proc.stdout).strip())[-300:]
            raise RecoveryError(f"compose.up: {shlex.join(args)} exited {proc.returncode}: {tail}")
        return f"ran {shlex.join([Path(args[0]).name, *args[1:]])}"
