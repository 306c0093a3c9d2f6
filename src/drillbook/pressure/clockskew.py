"""``clock.skew``: shift the clock a local process sees, with libfaketime.

libfaketime works by ``LD_PRELOAD``: a process must be started under it. drillbook then skews it
at any moment through the file libfaketime re-reads on every clock call
(``FAKETIME_TIMESTAMP_FILE`` with ``FAKETIME_NO_CACHE=1``): the fault writes the offset
(``+2d``, ``-30m``, ``+300s``) there, and revert writes back what was there before (``+0`` when
the file was new). Start the target with::

    python -m drillbook.pressure.clockskew --file .drillbook/clock/app.faketime -- CMD ARGS...

which sets the environment and execs ``CMD``; without libfaketime (Debian package ``faketime``)
both the wrapper and the fault stop with a clear "not available". Statically linked programs and
those that read the clock through the vDSO without libc (some Go binaries) are not affected.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context, Fault, Selection
from drillbook.errors import ConfigError, FaultError

__all__ = ["ClockSkew", "faketime_env", "find_libfaketime", "main"]

_LIBS = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)
OFFSET_PATTERN = r"^[+-][0-9]+(\.[0-9]+)?[smhdy]?$"


def find_libfaketime() -> str | None:
    override = os.environ.get("DRILLBOOK_LIBFAKETIME")
    for path in ((override,) if override else ()) + _LIBS:
        if path and os.path.exists(path):
            return path
    return None


def _require() -> str:
    lib = find_libfaketime()
    if lib is None:
        raise FaultError(
            "clock skew is not available here: libfaketime is not installed "
            "(Debian: apt-get install faketime; or set DRILLBOOK_LIBFAKETIME)"
        )
    return lib


def faketime_env(file: Path) -> dict[str, str]:
    """The environment that puts a process under libfaketime, skewed by ``file``'s offset."""
    return {
        "LD_PRELOAD": _require(),
        "FAKETIME_TIMESTAMP_FILE": str(file),
        "FAKETIME_NO_CACHE": "1",
        # Not DONT_FAKE_MONOTONIC: with it, libfaketime 0.9.10 makes Python's time.sleep fail
        # with EINVAL. So monotonic clocks move with the offset too (see docs/faults/resources.md).
    }


class ClockSkew(Fault):
    """Write ``offset`` into the target's faketime file; revert writes the previous content."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._state: dict[str, Any] = {}

    def _file(self) -> Path:
        raw = self.ctx.param("file")
        if not raw:
            raise ConfigError("expected the target's FAKETIME_TIMESTAMP_FILE", field="file")
        path = Path(str(raw))
        return path if path.is_absolute() else self.ctx.workdir / path

    def _offset(self) -> str:
        offset = str(self.ctx.param("offset", "")).strip()
        if not re.match(OFFSET_PATTERN, offset):
            raise ConfigError("expected an offset like +2d, -30m or +300s", field="offset")
        return offset

    def resolve(self) -> Selection:
        return Selection((str(self._file()),), 1)

    def plan(self) -> str:
        return f"clock.skew {self._offset()} for processes reading {self._file()}"

    def preflight(self) -> None:
        _require()

    def inject(self) -> None:
        _require()
        file = self._file()
        previous = file.read_text() if file.exists() else None
        self._state = {"file": str(file), "previous": previous, "offset": self._offset()}
        file.parent.mkdir(parents=True, exist_ok=True)
        _write(file, self._offset() + "\n")

    def verify_injected(self) -> bool:
        file = self._state.get("file")
        return bool(file) and Path(str(file)).read_text().strip() == self._state["offset"]

    def revert(self) -> None:
        file = self._state.get("file")
        if not file:
            return
        previous = self._state.get("previous")
        _write(Path(file), previous if previous is not None else "+0\n")

    def verify_reverted(self) -> bool:
        file = self._state.get("file")
        if not file:
            return True
        previous = self._state.get("previous")
        return Path(file).read_text() == (previous if previous is not None else "+0\n")

    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.drillbook-tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """``python -m drillbook.pressure.clockskew --file F -- CMD...``: exec CMD under libfaketime."""
    parser = argparse.ArgumentParser(prog="drillbook.pressure.clockskew")
    parser.add_argument("--file", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("expected a command after --")
    try:
        env = faketime_env(Path(args.file).resolve())
    except FaultError as exc:
        print(str(exc), file=sys.stderr)
        return 3
    file = Path(args.file)
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        _write(file, "+0\n")
    os.execvpe(command[0], command, {**os.environ, **env})
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
