"""``docker.stress``: CPU, memory or I/O pressure inside a container's own cgroup.

The hog is a shell worker started with ``docker exec`` in the container, so everything it uses is
charged to the container (its CPU quota, its memory limit, its block I/O). It needs only what a
busybox or Debian base image has (``sh``, ``timeout``, ``head``, ``tr``, ``mkfifo``, ``dd``) and
no Python. Bounds: ``timeout -s KILL`` ends it at ``duration`` even if every drillbook process
died; memory is at most the container's limit (``allow_oom: true`` lifts that, to rehearse the OOM
kill itself) and at most ``backends.docker.max_hog_bytes`` (default 2 GiB).

Every process of the hog carries a random marker in its command line, and ``state()`` keeps the
marker (not called a "token": the intent ledger redacts values of secret-looking keys) and the
hog's host pids (from ``docker top``), so revert — from any process — kills exactly those
processes inside the container and removes the I/O file and FIFO.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from drillbook.backends.docker.common import DockerFault
from drillbook.backends.docker.faults_storage import exec_shell
from drillbook.durations import parse_duration
from drillbook.errors import ConfigError, FaultError, SafetyError
from drillbook.pressure.sizes import parse_size

__all__ = ["DockerStress"]

_DEFAULT_CAP = 2 * 1024**3


def _kill_script(marker: str) -> str:
    """Kill every process whose command line holds ``marker``, except this shell."""
    t = shlex.quote(marker)
    return (
        'for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = "$$" ] && continue; '
        f"tr '\\0' ' ' < $d/cmdline 2>/dev/null | grep -q -- {t} && kill -KILL $p 2>/dev/null; "
        "done; true"
    )


class DockerStress(DockerFault):
    name = "docker.stress"

    def _kind(self) -> str:
        kind = str(self.ctx.param("kind", "cpu"))
        if kind not in ("cpu", "memory", "io"):
            raise ConfigError("expected cpu, memory or io", field="kind")
        return kind

    def _seconds(self) -> int:
        try:
            return max(1, int(parse_duration(self.ctx.param("duration", "10m"), allow_zero=False)))
        except ValueError as exc:
            raise ConfigError(str(exc), field="duration") from None

    def _size(self, limit: int) -> int:
        if "size" in self.ctx.params:
            size = parse_size(self.ctx.param("size"), field="size")
        elif "memory_percent" in self.ctx.params:
            if limit <= 0:
                raise ConfigError(
                    "memory_percent needs a container with a memory limit; give size instead",
                    field="memory_percent",
                )
            size = int(limit * float(self.ctx.param("memory_percent")) / 100.0)
        else:
            size = parse_size(self.ctx.param("size", "64MiB"), field="size")
        cap = parse_size(
            self.ctx.settings.get("max_hog_bytes", _DEFAULT_CAP), field="max_hog_bytes"
        )
        if size > cap:
            raise SafetyError(f"docker.stress refused: {size} bytes is over max_hog_bytes={cap}")
        if limit > 0 and size >= limit and not self.ctx.param("allow_oom", False):
            raise SafetyError(
                f"docker.stress refused: {size} bytes reaches the container's limit {limit}; "
                "set allow_oom: true to rehearse the OOM kill"
            )
        return size

    def describe(self) -> str:
        return f"docker.stress {self._kind()} for at most {self._seconds()}s"

    def _body(self, rec: dict[str, Any]) -> str:
        kind, marker = rec["kind"], rec["marker"]
        if kind == "cpu":
            n = int(rec["workers"])
            return f"i=0; while [ $i -lt {n} ]; do (while :; do :; done) & i=$((i+1)); done; wait"
        if kind == "memory":
            fifo = shlex.quote(f"/tmp/{marker}.fifo")
            return (
                f"x=$(head -c {int(rec['bytes'])} /dev/zero | tr '\\0' a); mkfifo {fifo}; "
                f"read -t {int(rec['seconds'])} _ <> {fifo}; rm -f {fifo}; echo ${{#x}}"
            )
        file = shlex.quote(rec["file"])
        mib = max(1, int(rec["bytes"]) // (1024 * 1024))
        return (
            f"while :; do dd if=/dev/zero of={file} bs=1048576 count={mib} conv=fsync "
            "2>/dev/null; done"
        )

    def inject(self) -> None:
        kind = self._kind()
        seconds = self._seconds()
        self._state["containers"] = []
        for c in self.containers():
            data = self.must_inspect(c.id)
            marker = f"drillbook-hog-{os.urandom(5).hex()}"
            rec: dict[str, Any] = {
                **self.identity(data),
                "kind": kind,
                "marker": marker,
                "seconds": seconds,
            }
            if kind == "cpu":
                rec["workers"] = int(self.ctx.param("workers", 1))
            elif kind == "memory":
                limit = int((data.get("HostConfig") or {}).get("Memory") or 0)
                rec["bytes"] = self._size(limit)
                rec["limit"] = limit
            else:
                folder = str(self.ctx.param("path", "/tmp")).rstrip("/") or "/"
                rec["file"] = f"{folder}/{marker}.bin"
                rec["bytes"] = min(
                    parse_size(self.ctx.param("size", "16MiB"), field="size"), 1024**3
                )
            self.records.append(rec)
        for rec in self.records:
            argv = [
                "timeout",
                "-s",
                "KILL",
                str(seconds),
                "sh",
                "-c",
                self._body(rec),
                rec["marker"],
            ]
            self.client.containers.get(rec["id"]).exec_run(argv, detach=True)

    def _hog_pids(self, rec: dict[str, Any]) -> list[tuple[int, int]]:
        """(host pid, RSS KiB) of the hog's processes, from ``docker top``."""
        try:
            top = self.client.containers.get(rec["id"]).top(ps_args="-eo pid,rss,args")
        except Exception:
            return []
        found = []
        for row in top.get("Processes") or []:
            if len(row) >= 3 and rec["marker"] in row[2]:
                try:
                    found.append((int(row[0]), int(row[1])))
                except ValueError:
                    continue
        return found

    def verify_injected(self) -> bool:
        for rec in self.records:
            pids = self._hog_pids(rec)
            if not pids:
                return False
            rec["pids"] = [p for p, _ in pids]
            if rec["kind"] == "cpu" and len(pids) < int(rec["workers"]):
                return False
            if rec["kind"] == "memory" and sum(r for _, r in pids) * 1024 < 0.9 * int(rec["bytes"]):
                return False
        return True

    def revert(self) -> None:
        self._revert_notes = []
        for rec in self.records:
            data = self.inspect(rec["id"])
            if data is None or not (data.get("State") or {}).get("Running"):
                continue  # a stopped or removed container runs nothing of the hog
            script = _kill_script(rec["marker"])
            extra = [rec.get("file"), f"/tmp/{rec['marker']}.fifo"]
            script += "; rm -f " + " ".join(shlex.quote(str(f)) for f in extra if f)
            # A loop may fork a new worker between the scan and the kill: scan again until none.
            for _ in range(5):
                code, out = exec_shell(self.client, rec["id"], script)
                if code != 0:
                    raise FaultError(f"docker.stress revert in {rec['name']}: {out.strip()[:200]}")
                if not self._hog_pids(rec):
                    break

    def verify_reverted(self) -> bool:
        return all(not self._hog_pids(rec) for rec in self.records)

    def revert_report(self) -> str:
        notes = []
        for rec in self.records:
            if rec.get("kind") == "memory" and rec.get("limit"):
                notes.append(
                    f"{rec['name']}: memory limit {rec['limit']}, hog {rec['bytes']} bytes"
                )
        return "; ".join(notes)
