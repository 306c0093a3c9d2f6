"""``disk.fill``: fill the filesystem holding a folder, up to a size or down to a free-space floor.

One file (``drillbook-fill-<token>.bin`` in ``path``), preallocated with ``posix_fallocate`` so the
blocks are really taken (a sparse file would fill nothing), in 64 MiB steps that stop at the
target. Its path goes into ``state()`` before the first byte is written, so revert — here, from
``drillbook rollback`` or from the TTL watchdog — deletes exactly that file and nothing else.

Bounds, checked before anything is written (a SafetyError, nothing touched): the file is never
larger than ``max_size`` (default 1 GiB, at most ``backends.local.max_fill_bytes``, default
8 GiB), and a ``size`` fill never takes the filesystem under ``min_free`` (default 64 MiB).
``free`` sets the floor to leave instead of a size; ``free: 0`` fills it completely.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context, Fault, Probe, Selection
from drillbook.clock import get_clock
from drillbook.errors import ConfigError, FaultError, SafetyError
from drillbook.model import ProbeResult
from drillbook.pressure.sizes import parse_size

__all__ = ["DiskFill", "DiskProbe"]

_STEP = 64 * 1024**2
_DEFAULT_MAX = 1024**3
_DEFAULT_CEILING = 8 * 1024**3


class DiskFill(Fault):
    """Take the free space of ``path``'s filesystem with one preallocated file."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._state: dict[str, Any] = {}

    def _folder(self) -> Path:
        raw = self.ctx.param("path")
        if not raw:
            raise ConfigError("expected the folder to fill", field="path")
        folder = Path(str(raw))
        return folder if folder.is_absolute() else self.ctx.workdir / folder

    def _max(self) -> int:
        ceiling = parse_size(
            self.ctx.settings.get("max_fill_bytes", _DEFAULT_CEILING), field="max_fill_bytes"
        )
        cap = parse_size(self.ctx.param("max_size", _DEFAULT_MAX), field="max_size")
        if cap > ceiling:
            raise SafetyError(
                f"disk.fill refused: max_size {cap} is over backends.local.max_fill_bytes={ceiling}"
            )
        return cap

    def _bytes(self) -> int:
        """How many bytes to write, from the free space now."""
        folder = self._folder()
        if not folder.exists() and self.ctx.param("create", True):
            folder.mkdir(parents=True)
            self._state["created"] = str(folder)
        if not folder.is_dir():
            raise FaultError(f"disk.fill: {folder} is not a folder")
        free = shutil.disk_usage(folder).free
        cap = self._max()
        if "size" in self.ctx.params:
            want = parse_size(self.ctx.param("size"), field="size")
            floor = parse_size(self.ctx.param("min_free", "64MiB"), field="min_free")
            if free - want < floor:
                raise SafetyError(
                    f"disk.fill refused: {want} bytes would leave {folder} under min_free={floor} "
                    f"(free now {free})"
                )
        else:
            floor = parse_size(self.ctx.param("free", 0), field="free")
            want = max(0, free - floor)
        if want > cap:
            raise SafetyError(
                f"disk.fill refused: reaching the target on {folder} needs {want} bytes, over "
                f"max_size={cap} (free now {free})"
            )
        return want

    def resolve(self) -> Selection:
        return Selection((str(self._folder()),), 1)

    def plan(self) -> str:
        if "size" in self.ctx.params:
            goal = f"{parse_size(self.ctx.param('size'), field='size')} bytes"
        else:
            goal = f"{parse_size(self.ctx.param('free', 0), field='free')} bytes free"
        return f"disk.fill {self._folder()} to {goal} (at most {self._max()} bytes)"

    def inject(self) -> None:
        want = self._bytes()
        path = self._folder() / f"drillbook-fill-{os.urandom(4).hex()}.bin"
        # Named in state before the first byte: a crash mid-write still leaves it revertible.
        self._state.update({"file": str(path), "bytes": want, "folder": str(self._folder())})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            done = 0
            while done < want:
                step = min(_STEP, want - done)
                try:
                    os.posix_fallocate(fd, done, step)
                except OSError as exc:  # ENOSPC when someone else wrote meanwhile: full is full
                    if exc.errno != 28:
                        raise
                    break
                done += step
            self._state["written"] = done
        finally:
            os.close(fd)

    def verify_injected(self) -> bool:
        path = self._state.get("file")
        return bool(path) and os.path.exists(str(path))

    def revert(self) -> None:
        path = self._state.get("file")
        if path:
            try:
                os.unlink(str(path))
            except FileNotFoundError:
                pass
        created = self._state.get("created")
        if created:
            try:
                os.rmdir(str(created))  # only the folder this fault made, and only when empty
            except OSError:
                pass

    def verify_reverted(self) -> bool:
        path = self._state.get("file")
        return not (path and os.path.exists(str(path)))

    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


class DiskProbe(Probe):
    """Free space of a folder's filesystem (``min_free``, ``max_percent``) and, for a folder with a
    budget (a quota, a volume of its own), the bytes under it (``max_bytes``). Its value is the
    free bytes, or the folder's bytes when ``max_bytes`` is the check."""

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        raw = self.ctx.param("path")
        folder = Path(str(raw))
        folder = folder if folder.is_absolute() else self.ctx.workdir / folder
        probe_at = folder
        while (
            not probe_at.exists()
        ):  # a folder not made yet holds nothing; its parent's disk counts
            probe_at = probe_at.parent
        usage = shutil.disk_usage(probe_at)
        problems = []
        value: int = usage.free
        if "min_free" in self.ctx.params:
            floor = parse_size(self.ctx.param("min_free"), field="min_free")
            if usage.free < floor:
                problems.append(f"free {usage.free} < {floor}")
        if "max_percent" in self.ctx.params:
            pct = 100.0 * usage.used / usage.total if usage.total else 100.0
            if pct > float(self.ctx.param("max_percent")):
                problems.append(f"used {pct:.1f}% > {self.ctx.param('max_percent')}%")
        if "max_bytes" in self.ctx.params:
            value = _folder_bytes(folder)
            budget = parse_size(self.ctx.param("max_bytes"), field="max_bytes")
            if value > budget:
                problems.append(f"{folder} holds {value} bytes > {budget}")
        detail = "; ".join(problems) or f"free {usage.free} bytes"
        return ProbeResult(not problems, get_clock().monotonic() - start, detail, value=value)
