"""drillbook's own tiny images, built on the spot from the host's static busybox; no registry.

Nothing can be pulled on the machines drillbook's sandbox runs on, so the images are a tar of
``/bin/busybox`` plus its applet links, imported with ``docker import`` (about 2 MB, 0.1 s).
Three tags of ``drillbook/busybox`` give the drills a release history:

- ``latest``: the good release; ``httpd`` on port 8080 serving ``/www/health`` ("ok");
- ``broken``: a bad release that starts and serves, but ``/health`` answers 404;
- ``crashloop``: a bad release that exits 1 at start ("config invalid"), so a restart policy
  loops it.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.clock import epoch
from drillbook.errors import FaultError

__all__ = ["BUSYBOX_REPO", "VARIANTS", "build_busybox", "ensure_image", "find_static_busybox"]

BUSYBOX_REPO = "drillbook/busybox"
_HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]

#: tag -> (CMD, files under /www, release name)
VARIANTS: Mapping[str, tuple[list[str], Mapping[str, str], str]] = {
    "latest": (
        _HTTPD,
        {"health": "ok\n", "index.html": "drillbook sandbox: good release\n"},
        "good",
    ),
    "good": (_HTTPD, {"health": "ok\n", "index.html": "drillbook sandbox: good release\n"}, "good"),
    "broken": (_HTTPD, {"index.html": "drillbook sandbox: broken release\n"}, "broken"),
    "crashloop": (
        ["sh", "-c", "echo 'fatal: config invalid' >&2; exit 1"],
        {"index.html": "never served\n"},
        "crashloop",
    ),
}


def find_static_busybox() -> Path:
    """A statically linked busybox: a dynamic one cannot run in an otherwise empty image."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox") or ""):
        if not candidate:
            continue
        path = Path(candidate)
        if path.is_file() and b"ld-linux" not in path.read_bytes()[:8192]:
            return path
    raise FaultError(
        "no static busybox on this machine (apt-get install busybox-static, "
        "or run scripts/testenv up docker)"
    )


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(epoch())
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


_CRASH = b"#!/bin/sh\necho 'fatal: config invalid' >&2\nexit 1\n"


def _rootfs(busybox: Path, files: Mapping[str, str], *, crash: bool = False) -> bytes:
    applets = subprocess.run(
        [str(busybox), "--list"], check=True, capture_output=True, text=True, timeout=30
    ).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "www", "data", "root"):
            _add_dir(tar, d)
        _add_dir(tar, "tmp", 0o1777)
        _add(tar, "bin/busybox", busybox.read_bytes(), 0o755)
        for applet in applets:
            if applet == "busybox" or (crash and applet == "httpd"):
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        if crash:
            # Even a container that names httpd as its command crashes on this release.
            _add(tar, "bin/httpd", _CRASH, 0o755)
        _add(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/group", b"root:x:0:\n")
        for name, text in files.items():
            _add(tar, f"www/{name}", text.encode())
    return buf.getvalue()


def build_busybox(client: Any, tag: str) -> str:
    """Import ``drillbook/busybox:<tag>``; return the image ID."""
    if tag not in VARIANTS:
        raise FaultError(f"no recipe for {BUSYBOX_REPO}:{tag}; known: {', '.join(VARIANTS)}")
    cmd, files, release = VARIANTS[tag]
    changes = [
        "ENV PATH=/bin",
        f"ENV DRILLBOOK_RELEASE={release}",
        "EXPOSE 8080",
        f"LABEL drillbook.release={release}",
        f"CMD {json.dumps(cmd)}",
    ]
    data = _rootfs(find_static_busybox(), files, crash=release == "crashloop")
    client.api.import_image_from_data(data, repository=BUSYBOX_REPO, tag=tag, changes=changes)
    image_id: str = client.images.get(f"{BUSYBOX_REPO}:{tag}").id
    return image_id


def ensure_image(client: Any, ref: str) -> bool:
    """Make sure ``ref`` exists on the engine; True when drillbook had to build it."""
    from docker.errors import ImageNotFound

    repo, _, tag = ref.partition(":")
    try:
        image = client.images.get(ref)
        # An older drillbook/busybox without the release label predates these recipes: rebuild.
        if repo != BUSYBOX_REPO or (image.labels or {}).get("drillbook.release"):
            return False
    except ImageNotFound:
        pass
    if repo != BUSYBOX_REPO:
        raise FaultError(
            f"image {ref} is not on the engine, and drillbook only builds {BUSYBOX_REPO}"
        )
    build_busybox(client, tag or "latest")
    return True
