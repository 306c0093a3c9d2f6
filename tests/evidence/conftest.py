"""Fixtures for the evidence tests (helpers live in evidence_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from evidence_fixtures import MakeRun, make_journal_and_events

from drillbook.clock import FakeClock, SystemClock, set_clock


@pytest.fixture(autouse=True)
def _fake_clock() -> Iterator[FakeClock]:
    clock = FakeClock(start=datetime(2026, 11, 22, 14, 0, tzinfo=UTC))
    set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(SystemClock())


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No signing key from the environment or the user's own config folder."""
    monkeypatch.delenv("DRILLBOOK_SIGNING_KEY", raising=False)
    monkeypatch.delenv("DRILLBOOK_SIGNING_KEY_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def reports_dir(tmp_path: Path) -> Path:
    path = tmp_path / "reports"
    path.mkdir()
    return path


@pytest.fixture
def make_run(reports_dir: Path) -> MakeRun:
    def make(
        run_id: str = "20261122T140102Z-3f9a1c",
        *,
        scenario: str = "process_restart",
        controls: list[str] | None = None,
        started: datetime | None = None,
        verdict: str = "passed",
        extra: dict[str, str] | None = None,
    ) -> Path:
        run_dir = reports_dir / run_id
        run_dir.mkdir()
        make_journal_and_events(
            run_dir,
            run_id=run_id,
            scenario=scenario,
            controls=controls if controls is not None else ["SOC2-A1.3", "ISO22301-8.5"],
            started=started or datetime(2026, 11, 22, 14, 1, 2, 123000, tzinfo=UTC),
            verdict=verdict,
        )
        for name, text in (
            extra or {"report.md": "# MTTR report\n", "junit.xml": "<x/>\n"}
        ).items():
            (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (run_dir / name).write_text(text)
        latest = reports_dir / "latest"
        if latest.is_symlink():
            latest.unlink()
        latest.symlink_to(run_id)
        return run_dir

    return make
