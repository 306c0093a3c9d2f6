"""Declarative scenarios: ``scenarios/*.yaml`` → :class:`~drillbook.model.Scenario`.

Validation happens in two passes, both before anything runs: the shipped JSON Schema
(``schemas/scenario.schema.json``, also usable by editors) for shape, then the registry for
meaning (fault/probe/step names exist, their params fit, durations parse, targets are configured).
Every failure is one line: ``file:line: field: what was expected``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from drillbook.backends.base import Registration, Registry
from drillbook.backends.selection import RENAMED
from drillbook.config import Config
from drillbook.durations import parse_duration
from drillbook.errors import ConfigError, ScenarioError
from drillbook.model import (
    AlertSpec,
    AlertsSpec,
    FaultSpec,
    GuardSpec,
    LedgerSpec,
    Objectives,
    ProbeSpec,
    RecoveryKind,
    RecoverySpec,
    Scenario,
    Severity,
    Verdict,
)
from drillbook.yamlload import Loaded, dotted, load_yaml_file

__all__ = ["load_scenario", "load_scenarios", "scenario_files", "scenario_schema", "validate_files"]

_ACTION_KEYS = {"type", "name", "target", "targets", "ttl", "rate"}
_RECOVERY_KEYS = {"kind", "type", "name", "target", "targets", "instruction", "timeout"}
Path_ = tuple[str | int, ...]


@cache
def scenario_schema() -> dict[str, Any]:
    text = (resources.files("drillbook") / "schemas" / "scenario.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def scenario_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


@cache
def _validator() -> Draft202012Validator:
    """Built once: compiling the schema per file dominated collecting hundreds of scenarios."""
    return Draft202012Validator(scenario_schema())


def _schema_errors(loaded: Loaded) -> None:
    """Raise the scenario's first schema error as ``file:line: field: what was expected``.

    jsonschema's own wording names the rule, not the fix; the common cases (an unknown key, a
    missing one, a malformed duration) are reworded to say what would have been accepted."""
    validator = _validator()
    errors = sorted(
        validator.iter_errors(loaded.data), key=lambda e: (len(e.absolute_path), str(e.path))
    )
    if not errors:
        return
    best = errors[0]
    path: Path_ = tuple(best.absolute_path)
    message = best.message
    if best.validator == "additionalProperties":
        extra = sorted(set(best.instance) - set(best.schema.get("properties", {})))
        if extra:
            path = (*path, extra[0])
            allowed = ", ".join(sorted(best.schema.get("properties", {})))
            message = f"unknown key; expected one of: {allowed}"
    elif best.validator == "required":
        message = message.replace("is a required property", "is required")
    elif (
        best.validator in ("pattern", "oneOf")
        and path
        and path[-1]
        in (
            "rto",
            "rpo",
            "timeout",
            "stable_for",
            "probe_interval",
            "ttl",
            "response_target",
            "duration",
            "poll_interval",
            "resolve_timeout",
            "tta",
            "ttn",
            "ttack",
        )
    ):
        message = (
            f"expected a duration such as 90s, 5m, 1h30m, PT5M or seconds, got {best.instance!r}"
        )
    elif len(message) > 200:
        message = message[:200] + "..."
    raise ScenarioError(
        message, source=loaded.source, line=loaded.line_of(path), field=dotted(path) or None
    )


#: id(registered params schema) -> (that schema, its validator). The registered schema is held
#: so its id cannot be reused by another object while the entry lives.
_PARAMS_VALIDATORS: dict[int, tuple[Any, Draft202012Validator]] = {}


def _params_validator(reg_schema: Mapping[str, Any]) -> Draft202012Validator:
    """The validator of ``{"type": "object", **reg_schema}``, built once per registered schema:
    a registry holds each schema for the life of the process, and a run validates many specs."""
    hit = _PARAMS_VALIDATORS.get(id(reg_schema))
    if hit is not None and hit[0] is reg_schema:
        return hit[1]
    validator = Draft202012Validator({"type": "object", **dict(reg_schema)})
    _PARAMS_VALIDATORS[id(reg_schema)] = (reg_schema, validator)
    return validator


class _Builder:
    def __init__(self, loaded: Loaded, registry: Registry | None, config: Config | None) -> None:
        self.loaded = loaded
        self.registry = registry
        self.config = config
        self.backends: set[str] = set()

    def error(self, path: Path_, message: str) -> ScenarioError:
        return ScenarioError(
            message,
            source=self.loaded.source,
            line=self.loaded.line_of(path),
            field=dotted(path) or None,
        )

    def duration(self, value: Any, path: Path_, *, allow_zero: bool = True) -> float:
        try:
            return parse_duration(value, allow_zero=allow_zero)
        except ValueError as exc:
            raise self.error(path, str(exc)) from None

    def targets(
        self, raw: Mapping[str, Any], path: Path_, default: Sequence[str]
    ) -> tuple[str, ...]:
        if "target" in raw and "targets" in raw:
            raise self.error((*path, "target"), "give either target or targets, not both")
        names: list[str] = []
        if "target" in raw:
            names = [raw["target"]]
        elif "targets" in raw:
            names = list(raw["targets"])
        else:
            names = list(default)
        if self.config is not None:
            for i, name in enumerate(names):
                if name not in self.config.targets:
                    known = ", ".join(sorted(self.config.targets)) or "none configured"
                    where = (*path, "target") if "target" in raw else (*path, "targets", i)
                    raise self.error(
                        where,
                        f"unknown target {name!r}; {self.config.source} knows: {known}",
                    )
        return tuple(names)

    def check_controls(self, controls: Sequence[Any]) -> None:
        """Control ids must be in the shipped catalog (a typo would silently lose evidence);
        an organisation's own controls are written with an ``X-`` prefix."""
        if not controls:
            return  # the catalog (a YAML file) is read only when needed
        from drillbook.controlcatalog import known_controls

        known = known_controls()
        for i, control in enumerate(controls):
            if str(control) not in known and not str(control).startswith("X-"):
                raise self.error(
                    ("controls", i),
                    f"unknown control {control!r}; expected one of: {', '.join(sorted(known))}, "
                    "or your own as X-<id>",
                )

    def lookup(
        self, kind: str, table: Mapping[str, Registration[Any]], name: str, path: Path_
    ) -> None:
        if self.registry is None:
            return
        reg = table.get(name)
        if reg is None:
            known = ", ".join(sorted(table)) or "none"
            broken = ""
            prefix = name.split(".")[0]
            for backend, why in self.registry.broken.items():
                if prefix.startswith(backend[:3]):
                    broken = f" (backend {backend} failed to load: {why})"
            raise self.error((*path, "type"), f"unknown {kind} {name!r}; known: {known}{broken}")
        self.backends.add(reg.backend)

    def params(
        self, raw: Mapping[str, Any], reserved: set[str], path: Path_, reg_schema: Any
    ) -> dict[str, Any]:
        params = {k: v for k, v in raw.items() if k not in reserved}
        if reg_schema:
            errors = sorted(
                _params_validator(reg_schema).iter_errors(params),
                key=lambda e: len(e.absolute_path),
            )
            if errors:
                err = errors[0]
                sub: Path_ = tuple(err.absolute_path)
                message = err.message
                if err.validator == "additionalProperties":
                    extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
                    if extra:
                        sub = (*sub, extra[0])
                        allowed = ", ".join(sorted(err.schema.get("properties", {}))) or "none"
                        message = f"unknown parameter; expected one of: {allowed}"
                        if extra[0] in RENAMED:
                            message = f"renamed: use {RENAMED[extra[0]]} (every backend's name)"
                elif err.validator == "anyOf" and all(
                    set(alt) == {"required"} for alt in err.validator_value
                ):  # "at least one of these", e.g. a fault's effects
                    wanted = ", ".join(k for alt in err.validator_value for k in alt["required"])
                    message = f"expected at least one of: {wanted}"
                raise self.error((*path, *sub), message)
        return params

    def schema_of(self, table: Mapping[str, Registration[Any]], name: str) -> Any:
        reg = table.get(name)
        return reg.params_schema if reg is not None else None

    def probe(
        self, raw: Mapping[str, Any], path: Path_, default_targets: Sequence[str]
    ) -> ProbeSpec:
        name = str(raw["type"])
        table = self.registry.probes if self.registry else {}
        self.lookup("probe", table, name, path)
        return ProbeSpec(
            type=name,
            name=str(raw.get("name") or name),
            params=self.params(raw, _ACTION_KEYS, path, self.schema_of(table, name)),
            targets=self.targets(raw, path, default_targets),
        )

    def alerts(self, raw: Mapping[str, Any] | None) -> AlertsSpec | None:
        """The ``alerts:`` section (the schema already checked its shape)."""
        if raw is None:
            return None

        def one(item: Any, notify_default: bool) -> AlertSpec:
            if isinstance(item, str):
                return AlertSpec(item, notify=notify_default)
            return AlertSpec(
                str(item["name"]),
                {str(k): str(v) for k, v in (item.get("labels") or {}).items()},
                notify=bool(item.get("notify", notify_default)),
                ack=item.get("ack"),
            )

        scrape = tuple(str(t) for t in raw.get("scrape", ()))
        if self.config is not None:
            for i, name in enumerate(scrape):
                if name not in self.config.targets:
                    known = ", ".join(sorted(self.config.targets)) or "none configured"
                    raise self.error(
                        ("alerts", "scrape", i),
                        f"unknown target {name!r}; {self.config.source} knows: {known}",
                    )
        path = ("alerts",)
        return AlertsSpec(
            expect=tuple(one(a, True) for a in raw.get("expect", ())),
            silent=tuple(one(a, False) for a in raw.get("silent", ())),
            scrape=scrape,
            poll_interval_s=self.duration(
                raw["poll_interval"], (*path, "poll_interval"), allow_zero=False
            )
            if "poll_interval" in raw
            else 0.25,
            targets_s={
                k: self.duration(v, (*path, "targets", k), allow_zero=False)
                for k, v in (raw.get("targets") or {}).items()
            },
            resolve_timeout_s=self.duration(raw["resolve_timeout"], (*path, "resolve_timeout"))
            if "resolve_timeout" in raw
            else 60.0,
        )

    def runbook_import(self, data: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The import record, with a ``warning`` when the runbook changed since (or is gone)."""
        raw = data.get("runbook_import")
        if not isinstance(raw, Mapping):
            return None
        from drillbook.runbook.drift import drift_warning

        base = self.config.workdir if self.config is not None else Path.cwd()
        warning = drift_warning(str(data.get("runbook", "")), str(raw["sha256"]), base)
        return {**raw, "warning": warning} if warning else dict(raw)

    def build(self) -> Scenario:
        data: Mapping[str, Any] = self.loaded.data
        default_targets: tuple[str, ...] = tuple(data.get("targets", ()))
        if self.config is not None and default_targets:
            self.targets({"targets": list(default_targets)}, (), ())

        self.check_controls(data.get("controls", ()))
        obj_raw: Mapping[str, Any] = data.get("objectives", {}) or {}
        severity = Severity(obj_raw.get("severity", data.get("severity", "P2")))
        response = None
        if "response_target" in obj_raw:
            response = self.duration(obj_raw["response_target"], ("objectives", "response_target"))
        elif self.config is not None:
            response = self.config.defaults.response_targets_s.get(severity.value)
        objectives = Objectives(
            rto_s=self.duration(obj_raw["rto"], ("objectives", "rto"), allow_zero=False)
            if "rto" in obj_raw
            else None,
            rpo_s=self.duration(obj_raw["rpo"], ("objectives", "rpo"))
            if "rpo" in obj_raw
            else None,
            severity=severity,
            response_target_s=response,
            controls=tuple(str(c) for c in data.get("controls", ())),
            resiliency_policy=dict(obj_raw["resiliency_policy"])
            if "resiliency_policy" in obj_raw
            else None,
        )
        if objectives.resiliency_policy and (
            objectives.rto_s is not None or objectives.rpo_s is not None
        ):
            raise self.error(
                ("objectives", "resiliency_policy"),
                "give rto/rpo or a resiliency_policy, not both (the policy is the source of truth)",
            )

        fault = None
        if "fault" in data:
            raw = data["fault"]
            name = str(raw["type"])
            table = self.registry.faults if self.registry else {}
            self.lookup("fault", table, name, ("fault",))
            fault = FaultSpec(
                type=name,
                params=self.params(raw, _ACTION_KEYS, ("fault",), self.schema_of(table, name)),
                targets=self.targets(raw, ("fault",), default_targets),
                ttl_s=self.duration(raw["ttl"], ("fault", "ttl"), allow_zero=False)
                if "ttl" in raw
                else None,
            )

        probes = tuple(
            self.probe(p, ("probes", i), default_targets)
            for i, p in enumerate(data.get("probes", ()))
        )
        steady = tuple(
            self.probe(p, ("steady_state", i), default_targets)
            for i, p in enumerate(data.get("steady_state", ()))
        )
        verify = tuple(
            self.probe(p, ("verify", i), default_targets)
            for i, p in enumerate(data.get("verify", ()))
        )
        alerts = self.alerts(data.get("alerts"))
        if alerts is not None:
            self.backends.add(
                "monitoring"
            )  # an alert drill needs Prometheus even with no probe on it
        guards = tuple(
            GuardSpec(
                self._expecting(
                    self.probe(g["probe"], ("guards", i, "probe"), default_targets), alerts
                ),
                int(g.get("max_failures", 1)),
            )
            for i, g in enumerate(data.get("guards", ()))
        )

        recovery: list[RecoverySpec] = []
        for i, raw in enumerate(data.get("recovery", ())):
            path: Path_ = ("recovery", i)
            kind = RecoveryKind(raw["kind"])
            step_type = raw.get("type")
            if kind is RecoveryKind.SCRIPTED:
                if not step_type:
                    raise self.error(
                        path, "a scripted step needs `type:` (a registered recovery step)"
                    )
                steps = self.registry.recoveries if self.registry else {}
                self.lookup("recovery step", steps, str(step_type), path)
                params = self.params(
                    raw, _RECOVERY_KEYS, path, self.schema_of(steps, str(step_type))
                )
            else:
                params = {k: v for k, v in raw.items() if k not in _RECOVERY_KEYS}
                if params:
                    key = sorted(params)[0]
                    raise self.error((*path, key), f"unknown key for a {kind.value} step")
                if step_type:
                    raise self.error((*path, "type"), f"a {kind.value} step takes no `type:`")
            if kind is RecoveryKind.MANUAL and not str(raw.get("instruction", "")).strip():
                raise self.error(
                    path, "a manual step needs `instruction:` (what the operator must do)"
                )
            recovery.append(
                RecoverySpec(
                    kind=kind,
                    type=str(step_type) if step_type else None,
                    name=str(raw.get("name") or step_type or kind.value),
                    params=params,
                    targets=self.targets(raw, path, default_targets),
                    instruction=str(raw.get("instruction", "")),
                    timeout_s=self.duration(raw["timeout"], (*path, "timeout"), allow_zero=False)
                    if "timeout" in raw
                    else None,
                )
            )

        ledger = None
        if "ledger" in data:
            raw = data["ledger"]
            name = str(raw["type"])
            self.lookup("ledger", self.registry.ledgers if self.registry else {}, name, ("ledger",))
            ledger = LedgerSpec(
                type=name,
                params={k: v for k, v in raw.items() if k not in _ACTION_KEYS},
                targets=self.targets(raw, ("ledger",), default_targets),
                rate_per_s=float(raw.get("rate", 50.0)),
            )

        if fault is None and not recovery:
            raise self.error((), "a scenario needs a `fault:`, `recovery:` steps, or both")
        if not probes and fault is not None:
            raise self.error(("probes",), "a scenario with a fault needs at least one probe")
        shape = str(data.get("shape", "recover"))
        hold_s: float | None = None
        if shape == "hold":
            if "duration" not in data:
                raise self.error(("shape",), "a hold drill needs `duration:` (how long to hold)")
            hold_s = self.duration(data["duration"], ("duration",), allow_zero=False)
            if fault is None:
                raise self.error(("shape",), "a hold drill needs a `fault:` to hold")
            if recovery:
                raise self.error(
                    ("recovery",),
                    "a hold drill has no recovery steps: it reverts the fault after `duration`",
                )
        elif "duration" in data:
            raise self.error(("duration",), "`duration:` belongs to `shape: hold` drills")
        if fault is not None and self.registry is not None:
            known = fault.type in self.registry.faults
            # Asked only of a fault without targets: the answer imports the fault's module.
            if known and not fault.targets and not self.registry.fault_is_read_only(fault.type):
                raise self.error(
                    ("fault",), "a fault that changes its targets needs a target or selector"
                )

        return Scenario(
            id=str(data["id"]),
            description=str(data.get("description", "")),
            runbook=str(data.get("runbook", "")),
            runbook_import=self.runbook_import(data),
            source=self.loaded.source,
            backends=tuple(sorted(self.backends)),
            targets=default_targets,
            fault=fault,
            probes=probes,
            steady_state=steady,
            recovery=tuple(recovery),
            verify=verify,
            guards=guards,
            ledger=ledger,
            objectives=objectives,
            probe_interval_s=self.duration(
                data["probe_interval"], ("probe_interval",), allow_zero=False
            )
            if "probe_interval" in data
            else None,
            stable_for_s=self.duration(data["stable_for"], ("stable_for",))
            if "stable_for" in data
            else None,
            timeout_s=self.duration(data["timeout"], ("timeout",), allow_zero=False)
            if "timeout" in data
            else None,
            tags=tuple(str(t) for t in data.get("tags", ())),
            shape=shape,
            hold_s=hold_s,
            allow_relapse=bool(data.get("allow_relapse", False)),
            alerts=alerts,
            expect=Verdict(data["expect"]) if "expect" in data else None,
        )

    @staticmethod
    def _expecting(spec: ProbeSpec, alerts: AlertsSpec | None) -> ProbeSpec:
        """An ``alerts.quiet`` guard ignores the alerts the drill expects, unless it names its own:
        the fault is meant to fire them, and aborting on them would stop every alert drill."""
        if spec.type != "alerts.quiet" or alerts is None or "expected" in spec.params:
            return spec
        import dataclasses

        names = sorted({a.name for a in alerts.expect})
        return dataclasses.replace(spec, params={**spec.params, "expected": names})


def load_scenario(
    path: Path,
    *,
    registry: Registry | None = None,
    config: Config | None = None,
    display: str | None = None,
) -> Scenario:
    """Parse and validate one scenario file; raises ScenarioError (one line) on any problem."""
    try:
        loaded = load_yaml_file(path, display)
    except ScenarioError:
        raise
    except ConfigError as exc:
        raise ScenarioError(exc.reason, source=exc.source, line=exc.line, field=exc.field) from None
    if not isinstance(loaded.data, Mapping):
        raise ScenarioError("expected a mapping with at least `id:`", source=loaded.source, line=1)
    _schema_errors(loaded)
    # A probe's header token or a step's DSN is as secret as drillbook.yaml's.
    from drillbook.secretsources import register_config_secrets

    register_config_secrets(loaded.data)
    return _Builder(loaded, registry, config).build()


def _display(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return str(path)


def load_scenarios(
    folder: Path, *, registry: Registry | None = None, config: Config | None = None
) -> list[Scenario]:
    """Every scenario in ``folder``; the first invalid file or duplicate id raises."""
    scenarios: list[Scenario] = []
    seen: dict[str, str] = {}
    base = config.workdir if config else None
    for path in scenario_files(folder):
        scenario = load_scenario(
            path, registry=registry, config=config, display=_display(path, base)
        )
        if scenario.id in seen:
            raise ScenarioError(
                f"duplicate scenario id {scenario.id!r} (also in {seen[scenario.id]})",
                source=scenario.source,
                field="id",
            )
        seen[scenario.id] = scenario.source
        scenarios.append(scenario)
    return scenarios


def validate_files(
    paths: Sequence[Path], *, registry: Registry | None = None, config: Config | None = None
) -> tuple[list[Scenario], list[ScenarioError]]:
    """Validate every file, collecting all errors (``drillbook validate`` reports each)."""
    ok: list[Scenario] = []
    errors: list[ScenarioError] = []
    seen: dict[str, str] = {}
    base = config.workdir if config else None
    for path in paths:
        try:
            scenario = load_scenario(
                path, registry=registry, config=config, display=_display(path, base)
            )
        except ScenarioError as exc:
            errors.append(exc)
            continue
        if scenario.id in seen:
            errors.append(
                ScenarioError(
                    f"duplicate scenario id {scenario.id!r} (also in {seen[scenario.id]})",
                    source=scenario.source,
                    field="id",
                )
            )
            continue
        seen[scenario.id] = scenario.source
        ok.append(scenario)
    return ok, errors
