"""The journal's probe-sample fast path writes what the generic path would, secrets included."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from drillbook.clock import utc_iso
from drillbook.journal import GENESIS, RunJournal
from drillbook.redact import register_secret

CASES = [
    dict(
        probe="http", ok=True, latency_s=0.000123, offset_s=1.5, end_offset_s=1.6, detail="HTTP 200"
    ),
    dict(
        probe="db password=hunter2x",
        ok=False,
        latency_s=2.0,
        offset_s=-0.25,
        end_offset_s=1e-07,
        detail='refused "postgres://app:s3cretpw@db/x" \u00e9\n\ttoken=abcdef Bearer abcdefghijkl',
    ),
    dict(probe="p", ok=True, latency_s=0.0, offset_s=12345.678901, end_offset_s=3.0, detail=""),
]


def _lines(journal: RunJournal) -> list[bytes]:
    return journal.events_path.read_bytes().splitlines()


@pytest.mark.parametrize("case", CASES)
def test_probe_event_matches_event(tmp_path: Path, case: dict[str, object]) -> None:
    journal = RunJournal(tmp_path, environment={})
    t = "2026-11-22T16:00:00.123Z"
    journal.event("probe", drill="d1", durable=False, **case)
    journal.probe_event(drill="d1", t=t, **case)  # type: ignore[arg-type]
    generic, fast = (json.loads(line) for line in _lines(journal)[1:3])
    assert list(fast) == list(generic)  # same keys in the same order
    for rec in (generic, fast):
        for volatile in ("seq", "prev", "t", "mono_s"):
            rec.pop(volatile)
    assert fast == generic
    assert "hunter2x" not in json.dumps(fast) and "s3cretpw" not in json.dumps(fast)


def test_probe_event_extends_the_hash_chain(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, environment={})
    for i in range(50):
        journal.probe_event(
            drill=None,
            t="x",
            probe=f"p{i % 3}",
            ok=i % 2 == 0,
            latency_s=0.1,
            offset_s=float(i),
            end_offset_s=i + 0.1,
            detail="HTTP 200",
        )
        journal.event("phase", drill="d", phase=f"ph{i}")
    prev = GENESIS
    for n, line in enumerate(_lines(journal)):
        rec = json.loads(line)
        assert rec["prev"] == prev and rec["seq"] == n
        prev = hashlib.sha256(line).hexdigest()


def test_a_secret_registered_later_is_redacted_from_remembered_strings(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, environment={})
    detail = "upstream said QWERTY-9876-canary"
    kw = dict(drill="d", t="x", probe="p", ok=False, latency_s=0.1, offset_s=0.0, end_offset_s=0.1)
    journal.probe_event(detail=detail, **kw)  # type: ignore[arg-type]
    register_secret("QWERTY-9876-canary")
    journal.probe_event(detail=detail, **kw)  # type: ignore[arg-type]
    first, second = (json.loads(line) for line in _lines(journal)[1:3])
    assert "QWERTY-9876-canary" in first["detail"]  # it was not a secret yet
    assert "QWERTY-9876-canary" not in second["detail"]


def test_utc_iso_matches_strftime_across_seconds_and_zones() -> None:
    base = datetime(2026, 11, 22, 23, 59, 58, 999_500, tzinfo=UTC)
    for step in range(0, 3_000_000, 777):
        moment = base + timedelta(microseconds=step)
        if step % 2:
            moment = moment.astimezone(timezone(timedelta(hours=-7, minutes=-30)))
        expected = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        assert utc_iso(moment) == expected


def test_platform_name_is_platform_platform_without_its_cost() -> None:
    import os
    import platform

    from drillbook.journal import platform_name

    name = platform_name()
    uname = os.uname()
    if uname.sysname != "Linux" or "CS_GNU_LIBC_VERSION" not in os.confstr_names:
        assert name == platform.platform()
        return
    lib, version = os.confstr("CS_GNU_LIBC_VERSION").split()  # e.g. "glibc 2.36"
    assert name == f"Linux-{uname.release}-{uname.machine}-with-{lib}{version}"
    if platform.libc_ver() == (lib, version):  # the binary's newest symbol = the running libc
        assert name == platform.platform()


def test_environment_snapshot_python_version_is_platforms(tmp_path: Path) -> None:
    import platform

    from drillbook.journal import environment_snapshot

    snap = environment_snapshot("test", tmp_path, "drillbook.yaml", False)
    assert snap["python"] == platform.python_version()
