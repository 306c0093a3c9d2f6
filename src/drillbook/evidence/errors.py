"""Evidence errors, placed in the core tree so the CLI maps them to exit codes without guessing."""

from __future__ import annotations

from drillbook.errors import ConfigError, DrillbookError

__all__ = ["EvidenceError", "EvidenceInputError"]


class EvidenceError(DrillbookError):
    """A bundle could not be built, signed or read (harness-side failure, exit 4)."""


class EvidenceInputError(ConfigError):
    """Bad input to an evidence command: no key, no run, a leaked secret (exit 2)."""
