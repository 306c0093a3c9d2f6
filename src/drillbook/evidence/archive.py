"""The .tar.gz form of a bundle: deterministic to write, safe to read.

Why deterministic (sorted names, fixed owner, mode and mtime): the same folder always gives the
same archive bytes, so the archive's own hash is meaningful when stored in object lock.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from pathlib import Path

from drillbook.evidence.errors import EvidenceError

__all__ = ["archive_path", "extract_bundle", "write_archive"]


def archive_path(folder: Path) -> Path:
    """Where the archive of a bundle folder lives: a sibling ``<name>.tar.gz``."""
    return folder.parent / f"{folder.name}.tar.gz"


def write_archive(folder: Path, mtime: int) -> Path:
    """(Re)write ``<folder>.tar.gz`` atomically; entries are ``<folder name>/<relative path>``."""
    target = archive_path(folder)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".tar.gz", dir=folder.parent)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in sorted(folder.rglob("*")):
                if not path.is_file() or path.is_symlink():
                    continue
                info = tarfile.TarInfo(f"{folder.name}/{path.relative_to(folder).as_posix()}")
                data = path.read_bytes()
                info.size = len(data)
                info.mtime = mtime
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
            raw.flush()
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def extract_bundle(archive: Path, into: Path) -> Path:
    """Extract with tarfile's ``data`` filter (no absolute paths, no ``..``, no links out).

    Returns the single top-level bundle folder inside ``into``.
    """
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise EvidenceError(f"{archive.name}: not a readable bundle archive ({exc})") from None
    tops = [p for p in into.iterdir()]
    if len(tops) != 1 or not tops[0].is_dir():
        names = ", ".join(sorted(p.name for p in tops)) or "nothing"
        raise EvidenceError(f"{archive.name}: expected one top-level bundle folder, found {names}")
    return tops[0]
