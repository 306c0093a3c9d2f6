"""``history:`` in drillbook.yaml: a file or a DSN, and a DSN's password only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from drillbook.config import load_config
from drillbook.errors import ConfigError
from drillbook.redact import redact_text


def _config(tmp_path: Path, text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    (tmp_path / "drillbook.yaml").write_text(text)
    return load_config(workdir=tmp_path, environ=env or {})


def test_default_is_the_sqlite_file_beside_the_reports(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "environment: staging\n")
    assert cfg.history_location == tmp_path / "reports" / "history.sqlite"


def test_a_path_stays_a_sqlite_file(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "history: shared/history.sqlite\n")
    assert cfg.history_location == tmp_path / "shared" / "history.sqlite"


def test_a_dsn_is_filled_from_the_environment_and_its_password_redacted(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        "history: postgresql://drill:${PW_FOR_TEST}@db.example:5432/history?sslmode=require\n",
        {"PW_FOR_TEST": "Zq7-not-in-reports"},
    )
    assert cfg.history_location == (
        "postgresql://drill:Zq7-not-in-reports@db.example:5432/history?sslmode=require"
    )
    assert "Zq7-not-in-reports" not in redact_text(
        f"failed: {cfg.history_location} (Zq7-not-in-reports)"
    )


def test_a_password_written_in_the_dsn_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _config(tmp_path, "environment: staging\nhistory: postgresql://drill:hunter22@db/h\n")
    assert info.value.line == 2 and "environment" in str(info.value)
    assert "hunter22" not in str(info.value)


def test_a_missing_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$NOT_SET_PW"):
        _config(tmp_path, "history: postgresql://drill:${NOT_SET_PW}@db/h\n")


def test_history_and_history_db_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        _config(tmp_path, "history: a.sqlite\nhistory_db: b.sqlite\n")
