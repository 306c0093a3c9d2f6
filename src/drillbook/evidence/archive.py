"""The .tar.gz form of a bundle: canonical to write, safe to read.

Why canonical (sorted names, owner 0, mode 0644, every mtime = the manifest's ``created_at``, gzip
header mtime 0): the archive is then a pure function of the folder's files, so the verifier can
rebuild it and prove that not one byte of the archive itself (headers, padding) was altered.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path

from drillbook.evidence import layout
from drillbook.evidence.errors import EvidenceError

__all__ = ["archive_bytes", "archive_path", "extract_bundle", "write_archive"]


def archive_path(folder: Path) -> Path:
    """Where the archive of a bundle folder lives: a sibling ``<name>.tar.gz``."""
    return folder.parent / f"{folder.name}.tar.gz"


def _mtime(folder: Path) -> int:
    try:
        created = json.loads((folder / layout.MANIFEST).read_text("utf-8"))["created_at"]
        return int(datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp())
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def archive_bytes(folder: Path) -> bytes:
    """The canonical archive of ``folder``: entries ``<folder name>/<relative path>``."""
    mtime = _mtime(folder)
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz,
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
    return buffer.getvalue()


def write_archive(folder: Path) -> Path:
    """(Re)write ``<folder>.tar.gz`` atomically."""
    target = archive_path(folder)
    data = archive_bytes(folder)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".tar.gz", dir=folder.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp made it 0600; the archive is meant to be handed over
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
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
    except (tarfile.TarError, OSError, EOFError, zlib_error()) as exc:
        raise EvidenceError(f"{archive.name}: not a readable bundle archive ({exc})") from None
    tops = list(into.iterdir())
    if len(tops) != 1 or not tops[0].is_dir():
        names = ", ".join(sorted(p.name for p in tops)) or "nothing"
        raise EvidenceError(f"{archive.name}: expected one top-level bundle folder, found {names}")
    return tops[0]


def zlib_error() -> type[Exception]:
    """zlib.error, which a corrupted gzip stream can raise through tarfile."""
    import zlib

    return zlib.error
