"""The exception tree.

Every error drillbook raises on purpose derives from :class:`DrillbookError`, so callers can
catch the family without catching programming errors::

    DrillbookError
    ├── ConfigError            bad drillbook.yaml, scenario, CLI value (exit 2); names file:line: field
    │   └── ScenarioError      a scenario file that does not validate
    ├── SafetyError            refused before touching anything: production, identity, blast radius, opt-in
    ├── BackendUnavailable     the platform a drill needs cannot be reached (skip, or fail in CI)
    ├── FaultError             inject / verify / revert did not work
    ├── RecoveryError          a scripted or manual recovery step failed or was refused
    └── DrillAborted           a guard tripped or a signal arrived; the fault was reverted

Why a tree: the engine turns each branch into a different verdict (``error``, ``aborted``) and the
CLI into a different exit code, and that mapping must not depend on string matching.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "DrillAborted",
    "DrillbookError",
    "FaultError",
    "RecoveryError",
    "SafetyError",
    "ScenarioError",
]


class DrillbookError(Exception):
    """Base of every deliberate drillbook error."""


class ConfigError(DrillbookError):
    """Input that drillbook cannot use. The message is one line: ``source:line: field: expected``."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.reason = message
        where = ""
        if source:
            where = source if line is None else f"{source}:{line}"
            where += ": "
        what = f"{field}: " if field else ""
        super().__init__(f"{where}{what}{message}")


class ScenarioError(ConfigError):
    """A scenario file that does not validate."""


class SafetyError(DrillbookError):
    """A safety check refused the drill before anything was injected."""


class BackendUnavailable(DrillbookError):
    """The backend's platform is not reachable here; the message is the one-line skip reason."""


class FaultError(DrillbookError):
    """A fault could not be injected, verified or reverted."""


class RecoveryError(DrillbookError):
    """A recovery step failed, timed out, or (manual, non-interactive) was refused."""


class DrillAborted(DrillbookError):
    """A guard tripped or a signal arrived mid-drill; what was injected has been reverted."""
