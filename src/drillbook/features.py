"""The composition root: the feature packages wired into the drill core's seams.

The only module that names them for the engine: the pytest plugin and the CLI's runner pass
:func:`wired_seams` to every :class:`~drillbook.engine.Drill` they build. Each import happens
inside its loader, when a drill first needs the feature.
"""

from __future__ import annotations

from drillbook.seams import AlertWatchFactory, PolicyObjectives, ProgressFactory, Seams, TeamResults

__all__ = ["wired_seams"]


def _policy_objectives() -> PolicyObjectives:
    from drillbook.backends.aws.resiliencehub import policy_objectives

    return policy_objectives


def _progress() -> ProgressFactory:
    from drillbook.report.progress import Progress

    return Progress


def _team() -> TeamResults:
    from drillbook.backends.monitoring import results

    return results


def _alert_watch() -> AlertWatchFactory:
    from drillbook.backends.monitoring.watch import AlertWatch

    return AlertWatch


def wired_seams() -> Seams:
    """Every feature this installation ships, behind the core's seams."""
    return Seams(
        policy_objectives=_policy_objectives,
        progress=_progress,
        team=_team,
        alert_watch=_alert_watch,
    )
