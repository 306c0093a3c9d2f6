"""A parsed runbook → a scenario file that ``drillbook validate`` accepts.

The procedure (Resolution or Step-by-Step Procedure) becomes the recovery: each step a manual
step whose instruction is the step's text, except that a shell block the runbook marks safe
(:data:`~drillbook.runbook.parse.SAFE_WORD`) becomes a scripted ``command`` step, run and timed
by the drill. Verification commands become probes where one fits (``curl -f URL`` → ``http``,
``pg_isready`` → ``postgres.ready`` on the given target), else a marked-safe command becomes a
``command`` probe; Rollback steps are kept for the report. The scenario keeps the runbook's link
and hash (:mod:`.drift`). Whatever is not used is reported line by line.

The file is written only after it validates, and never over an existing one without ``force``.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drillbook.clock import get_clock, utc_iso
from drillbook.config import Config
from drillbook.errors import ConfigError
from drillbook.runbook.drift import sha256_text
from drillbook.runbook.parse import Block, Runbook, Section, Step, parse_runbook

__all__ = ["ImportResult", "build_scenario", "import_runbook", "scenario_id_for"]

#: a probe that says a target of each backend is up, when the runbook's Verification gives none
_DEFAULT_PROBE = {"local": "http", "postgres": "postgres.ready", "docker": "docker.running"}
_MAX_INSTRUCTION = 4000


@dataclass
class ImportResult:
    scenario_id: str
    path: Path
    shape: str
    data: dict[str, Any]
    #: ``line N: ...`` for everything skipped or worth knowing, in line order
    log: list[str] = field(default_factory=list)


def scenario_id_for(path: Path) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "_", path.stem.lower()).strip("_-")
    if not slug or not slug[0].isalpha():
        slug = f"rb_{slug}"
    return slug[:80]


def _link(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def _shell_lines(block: Block) -> list[str]:
    """The commands of a shell block: prompts (``$ ``) and comments off, continuations joined."""
    out: list[str] = []
    pending = ""
    for raw in block.code.split("\n"):
        line = raw.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    if pending.strip():
        out.append(pending.strip())
    return out


def _curl_url(words: list[str]) -> str | None:
    """The URL of a ``curl`` that fails on an HTTP error (``-f``, ``--fail``, ``-fsS``...)."""
    fails = any(
        w in ("--fail", "--fail-with-body")
        or (w.startswith("-") and not w.startswith("--") and "f" in w[1:])
        for w in words[1:]
    )
    urls = [w for w in words[1:] if re.match(r"https?://", w)]
    return urls[0] if fails and urls else None


class _Builder:
    def __init__(
        self, book: Runbook, config: Config, registry: Any, target: str | None, fault: str | None
    ) -> None:
        self.book = book
        self.config = config
        self.registry = registry
        self.target = target
        self.fault = fault
        self.log: list[tuple[int, str]] = list(book.skipped)

    def backend_of(self, target: str | None) -> str | None:
        spec = self.config.targets.get(target) if target else None
        return spec.backend if spec is not None else None

    def probe_for(self, line: str, block: Block, step: Step) -> dict[str, Any] | None:
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        name = f"verify: {line}"[:200]
        if words and words[0] == "curl":
            url = _curl_url(words)
            if url:
                return {"name": name, "type": "http", "url": url}
        if words and words[0] == "pg_isready":
            if self.backend_of(self.target) == "postgres":
                self.log.append(
                    (
                        block.line,
                        f"`{line}` -> postgres.ready on target {self.target} "
                        "(host and port come from the target, not the command)",
                    )
                )
                return {"name": name, "type": "postgres.ready", "target": self.target}
            return {"name": name, "type": "command", "command": words}
        if block.safe:
            return {"name": name, "type": "command", "command": ["sh", "-ec", line]}
        self.log.append(
            (
                block.line,
                f"verification `{line}` (step {step.number}) maps to no probe and is not "
                "marked drill-safe: check it by hand",
            )
        )
        return None

    def verification(self, section: Section | None) -> list[dict[str, Any]]:
        probes: list[dict[str, Any]] = []
        if section is None:
            return probes
        for step in section.steps:
            shell = [b for b in step.blocks if b.is_shell]
            if not shell:
                self.log.append(
                    (
                        step.line,
                        f"verification step {step.number} ({step.title!r}) has no "
                        "command: not checked by the drill",
                    )
                )
            for block in shell:
                for line in _shell_lines(block):
                    probe = self.probe_for(line, block, step)
                    if probe is not None:
                        probes.append(probe)
        return probes

    def recovery(self, section: Section) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = []
        for step in section.steps:
            name = f"{step.number}. {step.title}"[:200]
            safe = tuple(b for b in step.blocks if b.safe)
            unsafe = [b for b in step.blocks if not b.safe]
            if not safe or unsafe:
                text = step.prose(without=safe) or step.title
                if len(text) > _MAX_INSTRUCTION:
                    self.log.append(
                        (
                            step.line,
                            f"step {step.number}: instruction cut to {_MAX_INSTRUCTION} characters",
                        )
                    )
                steps.append(
                    {"kind": "manual", "name": name, "instruction": text[:_MAX_INSTRUCTION]}
                )
            for i, block in enumerate(safe):
                suffix = f" ({i + 1})" if len(safe) > 1 else ""
                steps.append(
                    {
                        "kind": "scripted",
                        "name": f"{name}{suffix}"[:200],
                        "type": "command",
                        "command": ["sh", "-ec", block.code],
                    }
                )
        return steps


def _procedure(book: Runbook, log: list[tuple[int, str]]) -> Section:
    section = book.section("procedure", "resolution")
    if section is not None and section.steps:
        return section
    for candidate in book.sections:
        if candidate.steps and candidate.role not in ("verification", "rollback"):
            log.append(
                (
                    candidate.line,
                    f"no Resolution or Procedure section with steps: used the "
                    f"steps of {candidate.name!r}",
                )
            )
            return candidate
    raise ConfigError(
        "no steps found: expected a Resolution or Step-by-Step Procedure section with numbered "
        "steps or sub-headings"
    )


def build_scenario(
    book: Runbook,
    *,
    sha256: str,
    link: str,
    scenario_id: str,
    config: Config,
    registry: Any,
    fault: str | None = None,
    target: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The scenario as a YAML-ready mapping, and the import log (``line N: ...``)."""
    b = _Builder(book, config, registry, target, fault)
    if target is not None and target not in config.targets:
        known = ", ".join(sorted(config.targets)) or "none"
        raise ConfigError(f"--target {target!r} is not a target in {config.source} ({known})")
    procedure = _procedure(book, b.log)
    recovery = b.recovery(procedure)
    verify = b.verification(book.section("verification"))
    rollback = book.section("rollback")
    for section in book.sections:
        if section not in (procedure, rollback, book.section("verification")):
            b.log.append(
                (
                    section.line,
                    f"section {section.name!r} ({section.role or 'unknown'})"
                    ": context for people, not a drill step",
                )
            )
    probes = list(verify)
    if not probes and target is not None:
        kind = _DEFAULT_PROBE.get(b.backend_of(target) or "")
        if kind is not None:
            probes = [{"name": f"{target} up", "type": kind, "target": target}]
            b.log.append((procedure.line, f"no verification probe: watching {target} with {kind}"))
    if fault is not None and not probes:
        raise ConfigError(
            "a drill with a fault needs a probe: give the runbook a Verification step with "
            "`curl -f URL` or `pg_isready`, or a --target whose backend has a default probe"
        )
    objectives: dict[str, Any] = {"severity": book.severity or "P2"}
    if book.severity is None:
        b.log.append((1, "no severity line (e.g. `**Severity:** P1`): P2 assumed"))
    if book.rto_s is not None:
        objectives["rto"] = f"{book.rto_s:g}s"
    ledger = None
    if book.rpo_s is not None:
        # An RPO is judged only where a ledger measures what was lost (never optimistic): keep
        # it with the target backend's ledger, else leave it out and say so.
        ledgers = [
            name
            for name, reg in sorted(getattr(registry, "ledgers", {}).items())
            if reg.backend == b.backend_of(target)
        ]
        if ledgers:
            objectives["rpo"] = f"{book.rpo_s:g}s"
            ledger = {"type": ledgers[0], "target": target}
            b.log.append((1, f"RPO {book.rpo_s:g}s: measured by a {ledgers[0]} writer on {target}"))
        else:
            b.log.append(
                (
                    1,
                    f"RPO {book.rpo_s:g}s not judged: no ledger can measure data "
                    "loss here (give a --target whose backend has one)",
                )
            )
    if book.response_target_s is not None:
        objectives["response_target"] = f"{book.response_target_s:g}s"
    # People take minutes per step: the drill's deadline and the fault's TTL must outlast them.
    timeout_s = max(3600.0, 2 * (book.rto_s or 0.0))
    data: dict[str, Any] = {
        "id": scenario_id,
        "description": f"Imported from the runbook {book.title!r} ({book.shape} shape).",
        "runbook": link,
        "runbook_import": {
            "sha256": sha256,
            "shape": book.shape,
            "title": book.title[:500],
            "imported_at": utc_iso(get_clock().wall()),
            "rollback": [s.text[:4000] for s in rollback.steps] if rollback else [],
        },
        "objectives": objectives,
        "timeout": f"{timeout_s:g}s",
    }
    if target is not None:
        data["targets"] = [target]
    if fault is not None:
        data["fault"] = {"type": fault, "target": target, "ttl": f"{timeout_s + 600:g}s"}
        if target is None:
            del data["fault"]["target"]
    if probes:
        data["probes"] = probes
    if verify:
        data["verify"] = verify
    data["recovery"] = recovery
    if ledger is not None:
        data["ledger"] = ledger
    log = [f"line {n}: {what}" for n, what in sorted(set(b.log))]
    return data, log


class _Dumper:
    """yaml.SafeDumper writing multi-line strings as literal blocks (readable instructions)."""

    @staticmethod
    def dump(data: Mapping[str, Any]) -> str:
        import yaml

        class Dumper(yaml.SafeDumper):
            def ignore_aliases(self, data: Any) -> bool:
                return True  # a probe listed twice is written twice, not as &id001

        def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
            style = "|" if "\n" in value else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

        Dumper.add_representer(str, text)
        return yaml.dump(dict(data), Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)


def import_runbook(
    runbook: Path,
    *,
    config: Config,
    registry: Any,
    fault: str | None = None,
    target: str | None = None,
    out: Path | None = None,
    scenario_id: str | None = None,
    force: bool = False,
) -> ImportResult:
    """Parse, build, validate, then write the scenario (``scenarios/<id>.yaml`` by default)."""
    from drillbook.errors import ScenarioError
    from drillbook.scenario import load_scenario

    try:
        text = runbook.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{runbook}: cannot read the runbook ({exc})") from None
    book = parse_runbook(text)
    sid = scenario_id or scenario_id_for(runbook)
    if not re.match(r"^[a-z][a-z0-9_-]{0,79}$", sid):
        raise ConfigError(f"--id {sid!r}: expected a lower-case letter, then a-z 0-9 _ -")
    path = out if out is not None else config.scenarios_dir / f"{sid}.yaml"
    if path.exists() and not force:
        raise ConfigError(f"{path} exists: give --force to replace it, or -o another path")
    data, log = build_scenario(
        book,
        sha256=sha256_text(text),
        link=_link(runbook, config.workdir),
        scenario_id=sid,
        config=config,
        registry=registry,
        fault=fault,
        target=target,
    )
    header = (
        f"# Imported by `drillbook runbook import` from {data['runbook']}: the recovery is the\n"
        "# runbook's procedure. Change the runbook, then re-import with --force (a changed\n"
        "# runbook is flagged at the next drill).\n"
    )
    body = header + _Dumper.dump(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{sid}.", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        try:
            load_scenario(Path(tmp), registry=registry, config=config, display=str(path))
        except ScenarioError as exc:
            raise ConfigError(f"the imported scenario does not validate: {exc}") from None
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ImportResult(sid, path, book.shape, data, log)
