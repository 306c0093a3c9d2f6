"""drillbook.yaml and ``[tool.drillbook]``: the environment a run drills against.

Precedence is CLI > environment variables > file (drillbook.yaml over pyproject.toml's
``[tool.drillbook]``). Every error names where the bad value came from (``drillbook.yaml:12:
safety.max_percent: ...``, ``$DRILLBOOK_PROBE_INTERVAL: ...``, ``--drill-probe-interval: ...``),
because a drill refused for a reason nobody can find is a drill nobody runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drillbook.durations import parse_duration
from drillbook.errors import ConfigError
from drillbook.model import DEFAULT_RESPONSE_TARGETS_S, TargetSpec

if TYPE_CHECKING:
    from drillbook.locks_k8s import LeaseSettings
    from drillbook.operator import Operator
    from drillbook.yamlload import Loaded

__all__ = [
    "Config",
    "Defaults",
    "Overrides",
    "SafetySettings",
    "find_config",
    "is_production_name",
    "load_config",
]

TOP_KEYS = {
    "environment",
    "production",
    "allow_production",
    "targets",
    "backends",
    "safety",
    "defaults",
    "reports_dir",
    "state_dir",
    "scenarios_dir",
    "history_db",
    "history",
    "sandbox",
}
SAFETY_KEYS = {
    "max_targets",
    "max_percent",
    "require_opt_in",
    "fault_ttl",
    "intent_ledger",
    "watchdog",
    "revert_retry",
    "lock",
}
DEFAULT_KEYS = {"probe_interval", "stable_for", "timeout", "response_targets", "probe_timeout"}
_PROD = re.compile(r"(^|[-_.\s])(prod|production|prd|live)($|[-_.\s\d])", re.IGNORECASE)


def is_production_name(name: str) -> bool:
    """Whether an environment name looks like production (``prod``, ``eu-production``, ``live``)."""
    return bool(_PROD.search(name))


@dataclass(frozen=True)
class SafetySettings:
    max_targets: int | None = None
    max_percent: float | None = None
    require_opt_in: bool = True
    fault_ttl_s: float = 15 * 60.0
    intent_ledger: Path | None = None  # default: <state_dir>/intents.jsonl
    #: Whether a drill needs a live TTL watchdog before it injects (off only when said so).
    watchdog: bool = True
    #: Who turned the watchdog off ("safety.watchdog: false in drillbook.yaml", the env var).
    watchdog_off_by: str = ""
    #: How long a failed revert is retried (with backoff) before the drill gives up on it.
    revert_retry_s: float = 60.0
    #: ``safety.lock``: a Kubernetes Lease arbiter's settings (a LeaseSettings), else None.
    lock: LeaseSettings | None = None


@dataclass(frozen=True)
class Defaults:
    probe_interval_s: float = 0.25
    probe_timeout_s: float = 2.0
    stable_for_s: float = 1.0
    timeout_s: float | None = None
    response_targets_s: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_RESPONSE_TARGETS_S)
    )


@dataclass(frozen=True)
class Overrides:
    """What the command line said; ``None`` means "not given"."""

    config_path: Path | None = None
    environment: str | None = None
    reports_dir: Path | None = None
    state_dir: Path | None = None
    scenarios_dir: Path | None = None
    probe_interval_s: float | None = None
    dry_run: bool | None = None
    allow_production: bool = False
    evidence: bool = False
    manual_answers: Mapping[str, str] = field(default_factory=dict)
    operator: Operator | None = None  # who is asked for manual steps (a GameDay console)


@dataclass(frozen=True)
class Config:
    source: str  # where the file part came from ("drillbook.yaml", "pyproject.toml", "defaults")
    workdir: Path
    environment: str = "sandbox"
    production: bool = False
    allow_production: bool = False  # the file's consent
    cli_allow_production: bool = False  # the command line's consent; both are needed
    targets: Mapping[str, TargetSpec] = field(default_factory=dict)
    backends: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    safety: SafetySettings = field(default_factory=SafetySettings)
    defaults: Defaults = field(default_factory=Defaults)
    reports_dir: Path = Path("reports")
    state_dir: Path = Path(".drillbook")
    scenarios_dir: Path = Path("scenarios")
    history_db: Path | None = None
    #: ``history: postgresql://...``: the shared store, ``${VAR}``s filled from the environment
    #: (their values registered as secrets). None: the SQLite file at ``history_path``.
    history_dsn: str | None = None
    sandbox: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    evidence: bool = False
    manual_answers: Mapping[str, str] = field(default_factory=dict)
    config_path: Path | None = None
    #: asked for manual steps --answer did not answer; None: the engine's own prompt
    operator: Operator | None = None

    @property
    def intent_ledger(self) -> Path:
        return self.safety.intent_ledger or self.state_dir / "intents.jsonl"

    @property
    def history_path(self) -> Path:
        return self.history_db or self.reports_dir / "history.sqlite"

    @property
    def history_location(self) -> Path | str:
        """Where runs are recorded: the PostgreSQL DSN when one is configured, else the file."""
        return self.history_dsn or self.history_path

    def backend_settings(self, backend: str) -> Mapping[str, Any]:
        return self.backends.get(backend, {})

    def target(self, name: str) -> TargetSpec:
        try:
            return self.targets[name]
        except KeyError:
            known = ", ".join(sorted(self.targets)) or "none configured"
            raise ConfigError(
                f"unknown target {name!r}; known: {known}", source=self.source, field="targets"
            ) from None


def find_config(start: Path) -> Path | None:
    """drillbook.yaml in ``start`` or the nearest parent that has one."""
    for folder in (start, *start.parents):
        candidate = folder / "drillbook.yaml"
        if candidate.is_file():
            return candidate
    return None


def _pyproject_section(workdir: Path) -> tuple[dict[str, Any], str] | None:
    path = workdir / "pyproject.toml"
    if not path.is_file():
        return None
    import tomllib  # only for a project configured in pyproject.toml

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read [tool.drillbook]: {exc}", source=str(path)) from None
    section = data.get("tool", {}).get("drillbook")
    if not isinstance(section, dict) or not section:
        return None
    return section, "pyproject.toml [tool.drillbook]"


def _lock_setting(
    value: Any, err: Callable[[tuple[str | int, ...], str], ConfigError]
) -> LeaseSettings | None:
    from drillbook.locks_k8s import parse_lock_setting

    return parse_lock_setting(value, err)


def _duration(loaded: Loaded | None, source: str, path: tuple[str | int, ...], value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        if loaded is not None:
            raise loaded.error(path, str(exc)) from None
        raise ConfigError(str(exc), source=source, field=".".join(map(str, path))) from None


def _parse(raw: Mapping[str, Any], loaded: Loaded | None, source: str, workdir: Path) -> Config:
    def err(path: tuple[str | int, ...], message: str) -> ConfigError:
        if loaded is not None:
            return loaded.error(path, message)
        return ConfigError(message, source=source, field=".".join(map(str, path)))

    unknown = set(raw) - TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise err((key,), f"unknown key; expected one of: {', '.join(sorted(TOP_KEYS))}")

    environment = raw.get("environment", "sandbox")
    if not isinstance(environment, str) or not environment.strip():
        raise err(("environment",), "expected a non-empty name such as sandbox or staging")
    for key in ("production", "allow_production"):
        if key in raw and not isinstance(raw[key], bool):
            raise err((key,), "expected true or false")

    targets: dict[str, TargetSpec] = {}
    raw_targets = raw.get("targets", {}) or {}
    if not isinstance(raw_targets, Mapping):
        raise err(("targets",), "expected a mapping of target name -> {backend: ..., ...}")
    for name, spec in raw_targets.items():
        if not isinstance(spec, Mapping):
            raise err(("targets", name), "expected a mapping with at least `backend:`")
        backend = spec.get("backend")
        if not isinstance(backend, str) or not backend:
            raise err(("targets", name), "expected `backend:` (local, postgres, docker, ...)")
        params = {k: v for k, v in spec.items() if k != "backend"}
        targets[str(name)] = TargetSpec(str(name), backend, params)

    backends = raw.get("backends", {}) or {}
    if not isinstance(backends, Mapping) or not all(
        isinstance(v, Mapping) for v in backends.values()
    ):
        raise err(("backends",), "expected a mapping of backend name -> settings mapping")

    safety_raw = raw.get("safety", {}) or {}
    if not isinstance(safety_raw, Mapping):
        raise err(("safety",), "expected a mapping")
    for key in safety_raw:
        if key not in SAFETY_KEYS:
            raise err(
                ("safety", key), f"unknown key; expected one of: {', '.join(sorted(SAFETY_KEYS))}"
            )
    max_targets = safety_raw.get("max_targets")
    if max_targets is not None and (
        isinstance(max_targets, bool) or not isinstance(max_targets, int) or max_targets < 1
    ):
        raise err(("safety", "max_targets"), "expected a whole number >= 1")
    max_percent = safety_raw.get("max_percent")
    if max_percent is not None and (
        isinstance(max_percent, bool)
        or not isinstance(max_percent, int | float)
        or not 0 < max_percent <= 100
    ):
        raise err(("safety", "max_percent"), "expected a number in (0, 100]")
    require_opt_in = safety_raw.get("require_opt_in", True)
    if not isinstance(require_opt_in, bool):
        raise err(("safety", "require_opt_in"), "expected true or false")
    ttl = SafetySettings.fault_ttl_s
    if "fault_ttl" in safety_raw:
        ttl = _duration(loaded, source, ("safety", "fault_ttl"), safety_raw["fault_ttl"])
    ledger = safety_raw.get("intent_ledger")
    if ledger is not None and not isinstance(ledger, str):
        raise err(("safety", "intent_ledger"), "expected a path")
    watchdog = safety_raw.get("watchdog", True)
    if not isinstance(watchdog, bool):
        raise err(("safety", "watchdog"), "expected true or false")
    revert_retry = SafetySettings.revert_retry_s
    if "revert_retry" in safety_raw:
        revert_retry = _duration(
            loaded, source, ("safety", "revert_retry"), safety_raw["revert_retry"]
        )
    safety = SafetySettings(
        max_targets=max_targets,
        max_percent=float(max_percent) if max_percent is not None else None,
        require_opt_in=require_opt_in,
        fault_ttl_s=ttl,
        intent_ledger=(workdir / ledger) if ledger else None,
        watchdog=watchdog,
        watchdog_off_by="" if watchdog else f"safety.watchdog: false in {source}",
        revert_retry_s=revert_retry,
        lock=_lock_setting(safety_raw.get("lock"), err),
    )

    defaults_raw = raw.get("defaults", {}) or {}
    if not isinstance(defaults_raw, Mapping):
        raise err(("defaults",), "expected a mapping")
    for key in defaults_raw:
        if key not in DEFAULT_KEYS:
            raise err(
                ("defaults", key),
                f"unknown key; expected one of: {', '.join(sorted(DEFAULT_KEYS))}",
            )
    d = Defaults()
    probe_interval = d.probe_interval_s
    if "probe_interval" in defaults_raw:
        probe_interval = _duration(
            loaded, source, ("defaults", "probe_interval"), defaults_raw["probe_interval"]
        )
        if probe_interval < 0.01:
            raise err(("defaults", "probe_interval"), "expected at least 10ms")
    probe_timeout = d.probe_timeout_s
    if "probe_timeout" in defaults_raw:
        probe_timeout = _duration(
            loaded, source, ("defaults", "probe_timeout"), defaults_raw["probe_timeout"]
        )
    stable_for = d.stable_for_s
    if "stable_for" in defaults_raw:
        stable_for = _duration(
            loaded, source, ("defaults", "stable_for"), defaults_raw["stable_for"]
        )
    timeout = None
    if defaults_raw.get("timeout") is not None:
        timeout = _duration(loaded, source, ("defaults", "timeout"), defaults_raw["timeout"])
    response = dict(DEFAULT_RESPONSE_TARGETS_S)
    rt_raw = defaults_raw.get("response_targets", {}) or {}
    if not isinstance(rt_raw, Mapping):
        raise err(("defaults", "response_targets"), "expected a mapping such as {P0: 15m, P1: 1h}")
    for sev, value in rt_raw.items():
        if sev not in DEFAULT_RESPONSE_TARGETS_S:
            raise err(("defaults", "response_targets", sev), "expected one of P0, P1, P2, P3")
        response[sev] = _duration(loaded, source, ("defaults", "response_targets", sev), value)
    defaults = Defaults(probe_interval, probe_timeout, stable_for, timeout, response)

    def path_value(key: str, default: Path) -> Path:
        value = raw.get(key)
        if value is None:
            return workdir / default
        if not isinstance(value, str) or not value:
            raise err((key,), "expected a path")
        return workdir / value

    sandbox = raw.get("sandbox", {}) or {}
    if not isinstance(sandbox, Mapping):
        raise err(("sandbox",), "expected a mapping")
    history = raw.get("history_db")
    history_dsn = None
    shared = raw.get("history")
    if shared is not None:
        if history is not None:
            raise err(("history",), "expected one of history and history_db, not both")
        if not isinstance(shared, str) or not shared.strip():
            raise err(("history",), "expected a file path or a postgresql:// DSN")
        from drillbook.history_pg import is_dsn, literal_password

        if is_dsn(shared.strip()) and literal_password(shared.strip()):
            raise err(
                ("history",),
                "expected the password from the environment (${DRILLBOOK_HISTORY_PASSWORD} or "
                "PGPASSWORD), not written in the DSN",
            )
        if is_dsn(shared.strip()):
            history_dsn = shared.strip()  # filled from the environment by load_config
        else:
            history = shared
    return Config(
        source=source,
        workdir=workdir,
        environment=environment.strip(),
        production=bool(raw.get("production", False)) or is_production_name(environment),
        allow_production=bool(raw.get("allow_production", False)),
        targets=targets,
        backends={str(k): dict(v) for k, v in backends.items()},
        safety=safety,
        defaults=defaults,
        reports_dir=path_value("reports_dir", Path("reports")),
        state_dir=path_value("state_dir", Path(".drillbook")),
        scenarios_dir=path_value("scenarios_dir", Path("scenarios")),
        history_db=(workdir / history) if isinstance(history, str) and history else None,
        history_dsn=history_dsn,
        sandbox=dict(sandbox),
    )


def load_config(
    overrides: Overrides | None = None,
    *,
    workdir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the effective config: file, then environment variables, then the command line."""
    overrides = overrides or Overrides()
    env = os.environ if environ is None else environ
    workdir = (workdir or Path.cwd()).resolve()

    path: Path | None = overrides.config_path
    path_source = "--drill-config"
    if path is None and env.get("DRILLBOOK_CONFIG"):
        path, path_source = Path(env["DRILLBOOK_CONFIG"]), "$DRILLBOOK_CONFIG"
    if path is not None:
        path = path if path.is_absolute() else workdir / path
        if not path.is_file():
            raise ConfigError(f"no such file: {path}", source=path_source)
    else:
        path = find_config(workdir)

    if path is not None:
        base = path.parent
        try:
            display = str(path.relative_to(workdir))
        except ValueError:
            display = str(path)
        # Here, not at import: the engine and the report renderer need Config, not a YAML parser.
        from drillbook.yamlload import load_yaml_file

        loaded = load_yaml_file(path, display)
        raw = loaded.data if loaded.data is not None else {}
        secret_source: Any = raw
        if not isinstance(raw, Mapping):
            raise ConfigError("expected a mapping at the top level", source=display, line=1)
        config = _parse(raw, loaded, display, base)
        config = replace(config, config_path=path)
    else:
        section = _pyproject_section(workdir)
        secret_source = section[0] if section is not None else None
        if section is not None:
            config = _parse(section[0], None, section[1], workdir)
        else:
            config = Config(
                source="defaults",
                workdir=workdir,
                reports_dir=workdir / "reports",
                state_dir=workdir / ".drillbook",
                scenarios_dir=workdir / "scenarios",
            )

    if config.history_dsn is not None:
        from drillbook.history_pg import expand_dsn

        source = f"{config.source}: history" if config.source != "defaults" else "history"
        config = replace(config, history_dsn=expand_dsn(config.history_dsn, env, source=source))
    # Every secret the run reads is scrubbed by value wherever data leaves the process.
    from drillbook.secretsources import register_process_secrets

    register_process_secrets(secret_source, env)

    # Environment variables.
    if env.get("DRILLBOOK_ENVIRONMENT"):
        name = env["DRILLBOOK_ENVIRONMENT"].strip()
        config = replace(
            config,
            environment=name,
            production=config.production or is_production_name(name),
        )
    if env.get("DRILLBOOK_REPORTS_DIR"):
        config = replace(config, reports_dir=workdir / env["DRILLBOOK_REPORTS_DIR"])
    if env.get("DRILLBOOK_STATE_DIR"):
        config = replace(config, state_dir=workdir / env["DRILLBOOK_STATE_DIR"])
    if env.get("DRILLBOOK_SCENARIOS_DIR"):
        config = replace(config, scenarios_dir=workdir / env["DRILLBOOK_SCENARIOS_DIR"])
    if env.get("DRILLBOOK_PROBE_INTERVAL"):
        try:
            interval = parse_duration(env["DRILLBOOK_PROBE_INTERVAL"], allow_zero=False)
        except ValueError as exc:
            raise ConfigError(str(exc), source="$DRILLBOOK_PROBE_INTERVAL") from None
        config = replace(config, defaults=replace(config.defaults, probe_interval_s=interval))
    if env.get("DRILLBOOK_DRY_RUN", "").lower() in ("1", "true", "yes"):
        config = replace(config, dry_run=True)
    no_watchdog = env.get("DRILLBOOK_NO_WATCHDOG", "").strip().lower()
    if no_watchdog in ("1", "true", "yes"):
        # An explicit choice, journaled at every inject as made here (never a silent default).
        off_by = f"$DRILLBOOK_NO_WATCHDOG={env['DRILLBOOK_NO_WATCHDOG'].strip()}"
        config = replace(
            config, safety=replace(config.safety, watchdog=False, watchdog_off_by=off_by)
        )
    elif no_watchdog not in ("", "0", "false", "no"):
        raise ConfigError(
            "expected 1, true or yes (or 0, false, no)", source="$DRILLBOOK_NO_WATCHDOG"
        )

    # The command line.
    if overrides.environment:
        config = replace(
            config,
            environment=overrides.environment,
            production=config.production or is_production_name(overrides.environment),
        )
    if overrides.reports_dir is not None:
        config = replace(config, reports_dir=workdir / overrides.reports_dir)
    if overrides.state_dir is not None:
        config = replace(config, state_dir=workdir / overrides.state_dir)
    if overrides.scenarios_dir is not None:
        config = replace(config, scenarios_dir=workdir / overrides.scenarios_dir)
    if overrides.probe_interval_s is not None:
        config = replace(
            config, defaults=replace(config.defaults, probe_interval_s=overrides.probe_interval_s)
        )
    if overrides.dry_run is not None:
        config = replace(config, dry_run=overrides.dry_run or config.dry_run)
    return replace(
        config,
        cli_allow_production=overrides.allow_production,
        evidence=overrides.evidence,
        manual_answers=dict(overrides.manual_answers),
        operator=overrides.operator,
    )
