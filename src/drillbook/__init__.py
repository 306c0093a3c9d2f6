"""drillbook: disaster-recovery drills as pytest suites.

The public API. Importing it is cheap and never imports boto3, kubernetes or docker: backends load
their SDKs only when a drill uses them. Heavier entry points (the engine, the config loader) are
loaded on first attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drillbook.version import __version__

if TYPE_CHECKING:
    from drillbook.backends.base import (
        Context,
        Fault,
        Ledger,
        LedgerMeasure,
        Probe,
        RecoveryStep,
        Registry,
        Selection,
    )
    from drillbook.config import Config, load_config
    from drillbook.engine import Drill
    from drillbook.errors import (
        BackendUnavailable,
        ConfigError,
        DrillAborted,
        DrillbookError,
        FaultError,
        RecoveryError,
        SafetyError,
        ScenarioError,
    )
    from drillbook.model import (
        FaultSpec,
        GuardSpec,
        LedgerSpec,
        Objectives,
        ProbeResult,
        ProbeSpec,
        RecoveryKind,
        RecoverySpec,
        Scenario,
        Severity,
        TargetSpec,
        Verdict,
    )
    from drillbook.scenario import load_scenario, load_scenarios


__all__ = [
    "BackendUnavailable",
    "Config",
    "ConfigError",
    "Context",
    "Drill",
    "DrillAborted",
    "DrillbookError",
    "Fault",
    "FaultError",
    "FaultSpec",
    "GuardSpec",
    "Ledger",
    "LedgerMeasure",
    "LedgerSpec",
    "Objectives",
    "Probe",
    "ProbeResult",
    "ProbeSpec",
    "RecoveryError",
    "RecoveryKind",
    "RecoverySpec",
    "RecoveryStep",
    "Registry",
    "SafetyError",
    "Scenario",
    "ScenarioError",
    "Selection",
    "Severity",
    "TargetSpec",
    "Verdict",
    "__version__",
    "load_config",
    "load_scenario",
    "load_scenarios",
]

_LAZY = {
    "Context": "drillbook.backends.base",
    "Fault": "drillbook.backends.base",
    "Ledger": "drillbook.backends.base",
    "LedgerMeasure": "drillbook.backends.base",
    "Probe": "drillbook.backends.base",
    "RecoveryStep": "drillbook.backends.base",
    "Registry": "drillbook.backends.base",
    "Selection": "drillbook.backends.base",
    "BackendUnavailable": "drillbook.errors",
    "ConfigError": "drillbook.errors",
    "DrillAborted": "drillbook.errors",
    "DrillbookError": "drillbook.errors",
    "FaultError": "drillbook.errors",
    "RecoveryError": "drillbook.errors",
    "SafetyError": "drillbook.errors",
    "ScenarioError": "drillbook.errors",
    "FaultSpec": "drillbook.model",
    "GuardSpec": "drillbook.model",
    "LedgerSpec": "drillbook.model",
    "Objectives": "drillbook.model",
    "ProbeResult": "drillbook.model",
    "ProbeSpec": "drillbook.model",
    "RecoveryKind": "drillbook.model",
    "RecoverySpec": "drillbook.model",
    "Scenario": "drillbook.model",
    "Severity": "drillbook.model",
    "TargetSpec": "drillbook.model",
    "Verdict": "drillbook.model",
    "Config": "drillbook.config",
    "load_config": "drillbook.config",
    "Drill": "drillbook.engine",
    "load_scenario": "drillbook.scenario",
    "load_scenarios": "drillbook.scenario",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'drillbook' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
