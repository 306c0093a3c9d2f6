"""The record of a run: ``events.jsonl`` while it goes, ``journal.json`` at the end.

Why both: a crash must lose nothing, so every event is appended the moment it happens (a killed
harness loses nothing: the kernel has every line written) and the ones that matter (phase events,
see :data:`DURABLE_KINDS`) are fsynced before :meth:`RunJournal.event` returns, by the thread
that wrote them, so a power cut cannot drop a link of the hash chain below an event already
acted on; and readers want one document, so the end of the run writes it whole (fsynced, the
event log too, before it returns). Each event line carries ``prev``, the SHA-256 of the previous
line's bytes: the log is a hash chain, so evidence can prove that no event was dropped, changed
or reordered. Everything written passes through :func:`drillbook.redact.redact`.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.clock import Clock, get_clock, utc_iso
from drillbook.redact import redact, redact_text, secrets_generation
from drillbook.version import __version__

__all__ = [
    "GENESIS",
    "SCHEMA_VERSION",
    "RunJournal",
    "environment_snapshot",
    "git_commit",
    "git_head",
    "new_run_id",
    "platform_name",
]

SCHEMA_VERSION = 1
GENESIS = "0" * 64
#: Event kinds whose loss would matter after a crash: each one is fsynced as it is written.
DURABLE_KINDS = frozenset(
    {
        "run_start",
        "drill_start",
        "phase",
        "intent",
        "inject",
        "detect",
        "step",
        "recovered",
        "verify",
        "guard",
        "revert",
        "verdict",
        "drill_end",
        "run_end",
        "error",
    }
)


def _num(value: float) -> str:
    """A number exactly as json.dumps writes it (it uses float.__repr__), without its cost."""
    if type(value) is float and math.isfinite(value):
        return repr(value)
    return json.dumps(value)


def new_run_id(clock: Clock | None = None) -> str:
    moment = (clock or get_clock()).wall()
    return moment.strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(3).hex()  # = secrets.token_hex


def git_head(workdir: Path) -> tuple[str | None, str | None]:
    """``(commit, None)`` for the commit checked out at ``workdir``, else ``(None, why)``.

    git itself answers (``git rev-parse HEAD``), so every layout it supports (linked work trees,
    packed refs, bare repositories, ``GIT_DIR``) is read by its rules. ``why`` is one line for a
    person reading the journal: git is not installed, the folder is not in a repository, the
    repository has no commit yet, or git's own message."""
    try:
        out = subprocess.run(
            ["git", "-C", str(workdir), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except FileNotFoundError:
        return None, "git is not installed"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"git rev-parse HEAD failed: {exc}"
    commit = out.stdout.strip()
    if out.returncode == 0 and commit:
        return commit, None
    inside = subprocess.run(
        ["git", "-C", str(workdir), "rev-parse", "--git-dir"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if inside.returncode != 0:
        return None, f"{workdir} is not in a git repository"
    return None, "the git repository has no commit yet"


def git_commit(workdir: Path) -> str | None:
    """The commit of the drills being run, for the journal and evidence (None outside git)."""
    return git_head(workdir)[0]


class RunJournal:
    """One run's folder under the reports dir; thread-safe (probes record from worker threads)."""

    def __init__(
        self,
        reports_dir: Path,
        *,
        environment: Mapping[str, Any],
        clock: Clock | None = None,
        run_id: str | None = None,
    ) -> None:
        self.clock = clock or get_clock()
        self.run_id = run_id or new_run_id(self.clock)
        self.reports_dir = reports_dir
        self.dir = reports_dir / self.run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.events_path = self.dir / "events.jsonl"
        self._lock = threading.Lock()
        self._run_id_json = json.dumps(self.run_id)
        self._strings: dict[str, str] = {}
        self._strings_generation = secrets_generation()
        self._seq = 0
        self._prev = GENESIS
        self._fh = open(self.events_path, "ab")
        self._mono0 = self.clock.monotonic()
        self.started_at = utc_iso(self.clock.wall())
        self.environment = dict(environment)
        self.drills: list[dict[str, Any]] = []
        self.final_document: dict[str, Any] = {}  # set by finish(): journal.json's content
        self._update_latest()
        self.event("run_start", environment=self.environment, drillbook_version=__version__)

    def _update_latest(self) -> None:
        link = self.reports_dir / "latest"
        tmp = self.reports_dir / f".latest-{os.getpid()}"
        try:
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(self.run_id)
            os.replace(tmp, link)
        except OSError:
            # Filesystems without symlinks: a plain file naming the run.
            (self.reports_dir / "latest.txt").write_text(self.run_id + "\n")

    def mono_offset(self, mono: float | None = None) -> float:
        return round((self.clock.monotonic() if mono is None else mono) - self._mono0, 6)

    def event(
        self, kind: str, *, drill: str | None = None, durable: bool | None = None, **data: Any
    ) -> dict[str, Any]:
        """Append one event; returns it as written."""
        with self._lock:
            record: dict[str, Any] = {
                "seq": self._seq,
                "run_id": self.run_id,
                "drill": drill,
                "kind": kind,
                "t": utc_iso(self.clock.wall()),
                "mono_s": self.mono_offset(),
            }
            record.update(redact(data))
            record["prev"] = self._prev
            line = json.dumps(record, sort_keys=False, default=str, separators=(",", ":")).encode()
            self._fh.write(line + b"\n")
            self._fh.flush()
            if durable if durable is not None else kind in DURABLE_KINDS:
                os.fsync(self._fh.fileno())
            self._prev = hashlib.sha256(line).hexdigest()
            self._seq += 1
            return record

    def probe_event(
        self,
        *,
        drill: str | None,
        t: str,
        probe: str,
        ok: bool,
        latency_s: float,
        offset_s: float,
        end_offset_s: float,
        detail: str,
        value: float | None = None,
    ) -> None:
        """The one event written thousands of times a second: a probe sample.

        The same line :meth:`event` would write for ``event("probe", durable=False, ...)``
        (same keys, redaction and hash chain), formatted directly: with 1,000 probes at 10 Hz the
        generic path (deep redaction, ``json.dumps``) for every sample took a share of the probe
        loop (benchmarks/RESULTS.md, probe scale, engine mode).
        ``t`` is the sample's wall time, already formatted by the caller for its timeline."""
        enc = self._encode_str
        body = (
            f',"drill":{enc(drill)},"kind":"probe","t":"{t}"'
            f',"mono_s":{_num(self.mono_offset())},"probe":{enc(probe)}'
            f',"ok":{"true" if ok else "false"},"latency_s":{_num(latency_s)}'
            f',"offset_s":{_num(offset_s)},"end_offset_s":{_num(end_offset_s)}'
            f',"detail":{enc(detail)}' + ("" if value is None else f',"value":{_num(value)}')
        )
        with self._lock:
            line = f'{{"seq":{self._seq},"run_id":{self._run_id_json}{body},"prev":"{self._prev}"}}'
            raw = line.encode()
            self._fh.write(raw + b"\n")
            self._fh.flush()
            self._prev = hashlib.sha256(raw).hexdigest()
            self._seq += 1

    def _encode_str(self, value: str | None) -> str:
        """JSON for a redacted string, remembered: probe names and details repeat endlessly."""
        if value is None:
            return "null"
        if self._strings_generation != secrets_generation():  # a secret registered since
            self._strings.clear()
            self._strings_generation = secrets_generation()
        hit = self._strings.get(value)
        if hit is None:
            hit = json.dumps(redact_text(value))
            if len(self._strings) >= 4096:
                self._strings.clear()
            self._strings[value] = hit
        return hit

    def sync(self) -> None:
        with self._lock:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def add_drill(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            self.drills.append(redact(dict(record)))

    def document(self, exit_status: int | None = None) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "ended_at": utc_iso(self.clock.wall()),
            "drillbook_version": __version__,
            "environment": redact(self.environment),
            "exit_status": exit_status,
            "drills": list(self.drills),
        }

    def finish(self, exit_status: int | None = None) -> Path:
        """Write journal.json atomically and close the event log."""
        self.event("run_end", exit_status=exit_status, drills=len(self.drills))
        doc = self.document(exit_status)
        self.final_document = doc  # what reports render: journal.json, not a later snapshot
        path = self.dir / "journal.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        with self._lock:
            self._fh.flush()
            os.fsync(self._fh.fileno())  # the whole event log, before the run is said done
            self._fh.close()
        return path


def platform_name() -> str:
    """``platform.platform()``'s string on Linux (``Linux-6.1.0-x86_64-with-glibc2.36``) without
    its cost: it runs ``uname -p`` and scans the interpreter binary for the libc version at every
    run's start. The libc here is the running one (confstr), not the newest symbol version
    the binary links against; elsewhere the standard function answers."""
    uname = os.uname()
    names = getattr(os, "confstr_names", {})
    libc = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in names else None
    if uname.sysname != "Linux" or not libc:
        import platform

        return platform.platform()
    return f"{uname.sysname}-{uname.release}-{uname.machine}-with-{libc.replace(' ', '')}"


def environment_snapshot(
    name: str, workdir: Path, config_source: str, dry_run: bool
) -> dict[str, Any]:
    commit, why = git_head(workdir)
    return {
        "name": name,
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "python": sys.version.split()[0],  # platform.python_version(), without its import
        "platform": platform_name(),
        "git_commit": commit,
        "git_commit_note": why,  # None when there is a commit; else why there is none
        "config_source": config_source,
        "dry_run": dry_run,
    }
