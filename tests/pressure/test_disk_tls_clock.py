"""disk.fill (checked with ``df``/statvfs), tls.cert (checked with ``openssl s_client``, original
bytes by hash), clock.skew (a process under libfaketime reports its own clock), and their crash
cells."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.pressure.kit import build, crash_after_inject, make_project, pending, rollback, wait_for

from drillbook.errors import FaultError, SafetyError
from drillbook.plugin import needs_backend
from drillbook.pressure.clockskew import find_libfaketime


def _df_avail_kib(path: Path) -> int:
    out = subprocess.run(["df", "-P", "-k", str(path)], capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1].split()[3])


# -- disk.fill -------------------------------------------------------------------------------


def test_fill_takes_the_space_df_sees_and_revert_removes_the_file(tmp_path: Path) -> None:
    before = _df_avail_kib(tmp_path)
    fault = build("fault", "disk.fill", {"path": "spool", "size": "128MiB"}, tmp_path)
    fault.inject()
    fill = Path(fault.state()["file"])
    try:
        assert fault.verify_injected()
        used = fill.stat().st_blocks * 512
        assert used >= 128 * 1024 * 1024  # blocks really allocated, not a sparse file
        # df on a shared disk moves with others' writes: only the direction and a rough size.
        assert before - _df_avail_kib(tmp_path) > 64 * 1024
    finally:
        fault.revert()
    assert not fill.exists()
    assert not (tmp_path / "spool").exists()  # the folder it made, gone with it
    fault.revert()


def test_fill_to_a_free_floor_over_the_cap_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    fault = build("fault", "disk.fill", {"path": ".", "free": 0, "max_size": "1MiB"}, tmp_path)
    with pytest.raises(SafetyError, match="max_size"):
        fault.inject()
    assert not list(tmp_path.glob("drillbook-fill-*"))


def test_fill_that_would_break_the_min_free_floor_is_refused(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    # 1 MiB would leave the filesystem under a floor of (free now + 1 GiB): refused.
    floor = free + 1024**3
    fault = build("fault", "disk.fill", {"path": ".", "size": "1MiB", "min_free": floor}, tmp_path)
    with pytest.raises(SafetyError, match="min_free"):
        fault.inject()
    assert not list(tmp_path.glob("drillbook-fill-*"))


def test_disk_probe_reports_the_folder_budget(tmp_path: Path) -> None:
    (tmp_path / "spool").mkdir()
    probe = build("probe", "disk.usage", {"path": "spool", "max_bytes": "1MiB"}, tmp_path)
    assert probe.check().ok
    (tmp_path / "spool" / "big").write_bytes(b"x" * (2 * 1024 * 1024))
    result = probe.check()
    assert not result.ok and result.value >= 2 * 1024 * 1024


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    from drillbook.backends.local.service import free_port

    port = free_port()
    folder = tmp_path / "site"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drillbook.pressure.tlsfront",
            "--port",
            str(port),
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (folder / "cert.pem").exists() and _openssl(port, folder)[0] != "", 30)
        yield folder, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _openssl(port: int, folder: Path) -> tuple[str, str]:
    """(verify line, notAfter) as ``openssl s_client`` sees the served certificate."""
    run = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-CAfile",
            str(folder / "ca.pem"),
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
    )
    m = re.search(r"Verify return code: (\d+) \(([^)]*)\)", run.stdout)
    verify = f"{m.group(1)} {m.group(2)}" if m else ""
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", run.stdout, re.S)
    after = ""
    if pem:
        after = subprocess.run(
            ["openssl", "x509", "-noout", "-enddate"],
            input=pem.group(0),
            capture_output=True,
            text=True,
        ).stdout.strip()
    return verify, after


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("kind", "openssl_says"),
    [
        ("expired", "10 certificate has expired"),
        ("not_yet_valid", "9 certificate is not yet valid"),
        ("wrong_host", "62 hostname mismatch"),
        ("untrusted", "self-signed certificate"),
    ],
)
def test_tls_fault_is_what_openssl_sees_and_revert_restores_the_bytes(
    tmp_path: Path, tls_site: tuple[Path, int], kind: str, openssl_says: str
) -> None:
    folder, port = tls_site
    original = (_sha(folder / "cert.pem"), _sha(folder / "key.pem"))
    assert _openssl(port, folder)[0] == "0 ok"
    probe = build(
        "probe", "tls", {"port": port, "ca_file": str(folder / "ca.pem"), "min_days": 7}, tmp_path
    )
    assert probe.check().ok
    fault = build("fault", "tls.cert", {"dir": str(folder), "kind": kind}, tmp_path)
    fault.inject()
    try:
        assert fault.verify_injected()
        wait_for(lambda: openssl_says in _openssl(port, folder)[0], 20, f"openssl to see {kind}")
        result = probe.check()
        assert not result.ok
        if kind == "expired":
            assert result.value is not None and result.value < 0
    finally:
        fault.revert()
    assert (_sha(folder / "cert.pem"), _sha(folder / "key.pem")) == original
    assert fault.verify_reverted()
    wait_for(lambda: _openssl(port, folder)[0] == "0 ok", 20, "the original certificate back")
    assert not list((tmp_path / ".drillbook" / "pressure").glob("tls-*"))  # no backup left


def test_renew_recovers_and_the_probe_reports_days_left(
    tmp_path: Path, tls_site: tuple[Path, int]
) -> None:
    folder, port = tls_site
    fault = build("fault", "tls.cert", {"dir": str(folder), "kind": "expired"}, tmp_path)
    fault.inject()
    try:
        step = build("recovery", "tls.renew", {"dir": str(folder), "days": 90}, tmp_path)
        step.run()
        wait_for(lambda: _openssl(port, folder)[0] == "0 ok", 20, "the renewed certificate")
        probe = build(
            "probe",
            "tls",
            {"port": port, "ca_file": str(folder / "ca.pem"), "min_days": 60},
            tmp_path,
        )
        result = probe.check()
        assert result.ok and 89 < result.value <= 90
    finally:
        fault.revert()


_TLS_SCENARIO = """\
    id: crash
    objectives: {{rto: 5m}}
    probe_interval: 200ms
    stable_for: 200ms
    timeout: 5m
    fault: {{type: tls.cert, target: host, dir: site, kind: untrusted, ttl: {ttl}}}
    probes:
      - {{name: alive, type: command, target: host, command: ["true"]}}
    recovery:
      - {{kind: scripted, name: wait, type: command, target: host, command: ["sleep", "120"]}}
    """


def _make_site(root: Path) -> tuple[str, str]:
    from drillbook.pressure.tlsfront import _ensure

    _ensure(root / "site")
    return _sha(root / "site" / "cert.pem"), _sha(root / "site" / "key.pem")


@pytest.mark.parametrize("by", ["rollback", "ttl-watchdog"])
def test_tls_crash_cell(tmp_path: Path, by: str) -> None:
    root = make_project(
        tmp_path / "p", _TLS_SCENARIO.format(ttl="10m" if by == "rollback" else "4s")
    )
    original = _make_site(root)
    changed = lambda s: _sha(root / "site" / "cert.pem") != original[0]  # noqa: E731
    crash_after_inject(root, changed)
    assert _sha(root / "site" / "cert.pem") != original[0]
    if by == "rollback":
        result = rollback(root)
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        wait_for(lambda: not pending(root), 90, "the TTL watchdog to revert")
    assert (_sha(root / "site" / "cert.pem"), _sha(root / "site" / "key.pem")) == original
    assert not list((root / ".drillbook" / "pressure").glob("tls-*"))


_DISK_SCENARIO = """\
    id: crash
    objectives: {{rto: 5m}}
    probe_interval: 200ms
    stable_for: 200ms
    timeout: 5m
    fault: {{type: disk.fill, target: host, path: spool, size: 32MiB, ttl: {ttl}}}
    probes:
      - {{name: alive, type: command, target: host, command: ["true"]}}
    recovery:
      - {{kind: scripted, name: wait, type: command, target: host, command: ["sleep", "120"]}}
    """


@pytest.mark.parametrize("by", ["rollback", "ttl-watchdog"])
def test_disk_crash_cell(tmp_path: Path, by: str) -> None:
    root = make_project(
        tmp_path / "p", _DISK_SCENARIO.format(ttl="10m" if by == "rollback" else "4s")
    )
    state = crash_after_inject(root, lambda s: bool(s.get("file")) and os.path.exists(s["file"]))
    if by == "rollback":
        result = rollback(root)
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        wait_for(lambda: not pending(root), 90, "the TTL watchdog to revert")
    assert not os.path.exists(state["file"])
    assert not (root / "spool").exists()


# -- clock skew ------------------------------------------------------------------------------


def test_clock_skew_moves_the_process_clock_and_revert_restores_it(tmp_path: Path) -> None:
    if find_libfaketime() is None:
        needs_backend("faketime", "libfaketime is not installed (apt-get install faketime)")
    file = tmp_path / "app.faketime"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drillbook.pressure.clockskew",
            "--file",
            str(file),
            "--",
            sys.executable,
            "-c",
            "import time,sys\nwhile True:\n print(time.time(), flush=True)\n time.sleep(0.05)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None

    def skew_now() -> float:
        return float(reader.stdout.readline()) - time.time()  # type: ignore[union-attr]

    try:
        assert abs(skew_now()) < 60
        fault = build("fault", "clock.skew", {"file": str(file), "offset": "+2d"}, tmp_path)
        fault.inject()
        wait_for(lambda: abs(skew_now() - 2 * 86400) < 60, 10, "the process to see +2d")
        fault.revert()
        wait_for(lambda: abs(skew_now()) < 60, 10, "the process clock back")
        assert fault.verify_reverted()
    finally:
        reader.kill()
        reader.wait(timeout=10)


def test_clock_skew_without_libfaketime_says_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("drillbook.pressure.clockskew._LIBS", ())
    monkeypatch.delenv("DRILLBOOK_LIBFAKETIME", raising=False)
    fault = build("fault", "clock.skew", {"file": str(tmp_path / "f"), "offset": "+1h"}, tmp_path)
    with pytest.raises(FaultError, match="not available"):
        fault.preflight()
    assert not (tmp_path / "f").exists()
