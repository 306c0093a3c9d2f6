"""``docker.fill_disk``: fill a container's filesystem (or a named volume) to a percentage.

The fill is one file of zeros, written with ``dd`` inside the container (``path``, default
``/data``) or, for ``volume: NAME``, inside a short-lived helper container that mounts the volume.
``state()`` names the file, so revert deletes exactly it, from any process, and is a no-op when a
recovery step already cleaned it up.

Why a byte cap (``backends.docker.max_fill_bytes``, default 2 GiB): a container's root filesystem
is usually the host's disk. Filling it to 95 % would hurt the machine, not just the drill target;
point the fault at a tmpfs or a volume, or raise the cap deliberately.
"""

from __future__ import annotations

import math
import secrets
import shlex
from typing import Any

from drillbook.backends.docker.common import DockerFault
from drillbook.backends.docker.images import ensure_image
from drillbook.errors import ConfigError, FaultError, SafetyError

__all__ = ["FillDiskFault", "disk_usage", "exec_shell"]

_DEFAULT_CAP = 2 * 1024**3
HELPER_IMAGE = "drillbook/busybox:latest"


def exec_shell(client: Any, container: str, script: str) -> tuple[int, str]:
    """Run ``sh -c script`` in a running container: (exit code, output)."""
    result = client.containers.get(container).exec_run(["sh", "-c", script], demux=False)
    output = result.output.decode("utf-8", "replace") if result.output else ""
    return int(result.exit_code), output


def _helper(client: Any, volume: str, script: str, settings: Any) -> tuple[int, str]:
    image = str(settings.get("helper_image", HELPER_IMAGE))
    ensure_image(client, image)
    container = client.containers.create(
        image,
        ["sh", "-c", script],
        volumes={volume: {"bind": "/fill", "mode": "rw"}},
        labels={"drillbook.helper": "fill_disk"},
        network_mode="none",
    )
    try:
        container.start()
        code = int(container.wait(timeout=300).get("StatusCode", 1))
        out = container.logs().decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    return code, out


def _parse_df(output: str) -> tuple[int, int, int]:
    """(total KiB, used KiB, available KiB) from ``df -P -k`` output."""
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    fields = lines[-1].split()
    if len(fields) < 6:
        raise FaultError(f"could not read df output: {output.strip()[:200]}")
    return int(fields[1]), int(fields[2]), int(fields[3])


def disk_usage(client: Any, container: str, path: str) -> tuple[float, int, int]:
    """(percent used, used KiB, total KiB) of the filesystem holding ``path`` in a container."""
    code, out = exec_shell(client, container, f"df -P -k {shlex.quote(path)}")
    if code != 0:
        raise FaultError(f"df {path} in {container} failed ({code}): {out.strip()[:200]}")
    total, used, avail = _parse_df(out)
    size = used + avail
    return (100.0 * used / size if size else 100.0), used, total


class FillDiskFault(DockerFault):
    name = "docker.fill_disk"

    def _percent(self) -> float:
        pct = float(self.ctx.param("fill_percent", 95))
        if not 0 < pct <= 100:
            raise ConfigError("expected a percentage in (0, 100]", field="fill_percent")
        return pct

    def _volume(self) -> str | None:
        vol = self.ctx.param("volume")
        return str(vol) if vol else None

    def _path(self) -> str:
        return "/fill" if self._volume() else str(self.ctx.param("path", "/data"))

    def describe(self) -> str:
        where = f"volume {self._volume()}" if self._volume() else self._path()
        return f"docker.fill_disk {where} to {self._percent():g}%"

    def _shell(self, rec: dict[str, Any], script: str) -> tuple[int, str]:
        if rec.get("volume"):
            return _helper(self.client, rec["volume"], script, self.ctx.settings)
        # The container the target names now: a re-created one may keep the file on a volume.
        data = self.current(rec)
        if data is None:
            raise FaultError(f"docker.fill_disk: {rec['name']} no longer exists")
        return exec_shell(self.client, str(data["Id"]), script)

    def inject(self) -> None:
        pct = self._percent()
        cap = int(self.ctx.settings.get("max_fill_bytes", _DEFAULT_CAP))
        path = self._path()
        self._state["containers"] = []
        for c in self.containers():
            token = secrets.token_hex(4)
            rec = {
                **self.identity(self.must_inspect(c.id)),
                "volume": self._volume(),
                "file": f"{path.rstrip('/')}/drillbook-fill-{token}.bin",
                "percent": pct,
            }
            code, out = self._shell(rec, f"df -P -k {shlex.quote(path)}")
            if code != 0:
                raise FaultError(
                    f"docker.fill_disk: df {path} in {c.name} failed: {out.strip()[:200]}"
                )
            _total, used, avail = _parse_df(out)
            need_kib = max(0, math.ceil((used + avail) * pct / 100.0) - used)
            if need_kib * 1024 > cap:
                raise SafetyError(
                    f"docker.fill_disk refused: reaching {pct:g}% of {path} in {c.name} needs "
                    f"{need_kib * 1024} bytes, over backends.docker.max_fill_bytes={cap}"
                )
            rec["bytes"] = need_kib * 1024
            self.records.append(rec)
        for rec in self.records:
            blocks = math.ceil(rec["bytes"] / 65536)
            # dd stops with "No space left" at 100 %: expected, so its status is not the verdict.
            script = (
                f"dd if=/dev/zero of={shlex.quote(rec['file'])} bs=65536 count={blocks} "
                "2>/dev/null; sync; true"
            )
            self._shell(rec, script)

    def _usage(self, rec: dict[str, Any]) -> float:
        code, out = self._shell(
            rec, f"df -P -k {shlex.quote(rec['file'].rsplit('/', 1)[0] or '/')}"
        )
        if code != 0:
            raise FaultError(f"df failed in {rec['name']}: {out.strip()[:200]}")
        _total, used, avail = _parse_df(out)
        size = used + avail
        return 100.0 * used / size if size else 100.0

    def verify_injected(self) -> bool:
        # One block of slack: filesystems round allocations, and dd writes whole blocks.
        return all(self._usage(rec) >= min(rec["percent"], 99.0) - 1.0 for rec in self.records)

    def revert(self) -> None:
        self._revert_notes = []
        for rec in self.records:
            code, out = self._shell(rec, f"rm -f {shlex.quote(rec['file'])}")
            if code != 0:
                raise FaultError(
                    f"docker.fill_disk revert: rm {rec['file']} in {rec['name']}: "
                    f"{out.strip()[:200]}"
                )
            if not rec.get("volume"):
                self.note_reverted(rec)

    def verify_reverted(self) -> bool:
        for rec in self.records:
            code, _ = self._shell(rec, f"test ! -e {shlex.quote(rec['file'])}")
            if code != 0:
                return False
        return True
