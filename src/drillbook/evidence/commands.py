"""`drillbook evidence ...`: bundle, verify, keygen, sign-off, controls."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from drillbook.errors import ConfigError, DrillbookError

__all__ = ["register"]

Handler = Callable[[argparse.Namespace], int]


def _guard(fn: Handler) -> Handler:
    """Map deliberate errors to the CLI contract's exit codes with one line, no traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ConfigError as exc:
            print(f"drillbook evidence: {exc}", file=sys.stderr)
            return 2
        except DrillbookError as exc:
            print(f"drillbook evidence: {exc}", file=sys.stderr)
            return 4

    run.__doc__ = fn.__doc__
    return run


def _history_of(args: argparse.Namespace, reports: Path) -> Path | str:
    """The config's history (a shared PostgreSQL one, or its file), for this reports folder."""
    from drillbook.config import Overrides, load_config

    config = getattr(args, "config", None)
    loaded = load_config(
        Overrides(config_path=Path(config) if config else None, reports_dir=reports)
    )
    return loaded.history_location


def _reports_dir(args: argparse.Namespace) -> Path:
    """--reports-dir, else the config's ``reports_dir``, else ``reports``."""
    value = getattr(args, "reports_dir", None)
    if value:
        return Path(value)
    try:
        from drillbook.config import Overrides, load_config
    except ImportError:  # pragma: no cover - before the core config module existed
        return Path("reports")
    config = getattr(args, "config", None)
    loaded = load_config(Overrides(config_path=Path(config) if config else None))
    return Path(loaded.reports_dir)


def _load_yaml(path: Path, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror})", source=str(path), field=what) from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ConfigError(
            "expected valid YAML",
            source=str(path),
            line=None if line is None else line + 1,
            field=what,
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", source=str(path), field=what)
    return data


def _cmd_bundle(args: argparse.Namespace) -> int:
    from drillbook.evidence.archive import archive_path
    from drillbook.evidence.bundle import build_bundle, resolve_run_dir

    run_dir = resolve_run_dir(_reports_dir(args), args.run)
    config_path = Path(getattr(args, "config", None) or "drillbook.yaml")
    config = _load_yaml(config_path, "config") if config_path.is_file() else None
    notes = _load_yaml(Path(args.notes), "notes") if args.notes else None
    folder = build_bundle(
        run_dir,
        out_dir=Path(args.out) if args.out else None,
        key=Path(args.key) if args.key else None,
        config_snapshot=config,
        notes=notes,
    )
    archive = archive_path(folder)
    print(f"bundle: {folder}")
    print(f"archive: {archive}")
    if args.upload:
        from drillbook.evidence.upload import upload_bundle

        result = upload_bundle(
            archive,
            args.upload,
            retain_days=args.retain_days,
            endpoint_url=args.s3_endpoint_url,
            region=args.s3_region,
        )
        print(
            f"uploaded: s3://{result.bucket}/{result.key} version {result.version_id} "
            f"COMPLIANCE lock until {result.retain_until:%Y-%m-%d}"
        )
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from drillbook.evidence.keys import load_public_key
    from drillbook.evidence.trust import TrustRecord
    from drillbook.evidence.verify import verify_bundle, verify_bundle_chain

    trusted = [load_public_key(Path(p)) for p in args.public_key or []]
    trust = TrustRecord.load(Path(args.trust)) if args.trust else None
    results = [verify_bundle(Path(b), trusted, trust) for b in args.bundles]
    chain = verify_bundle_chain(results) if len(results) > 1 else []
    if trust is not None and all(r.ok for r in results) and not chain:
        trust.save()
    for result in results:
        for warning in result.warnings:  # loud, and on stderr too so --json readers see it
            print(f"WARNING {result.bundle}: {warning}", file=sys.stderr)
    if args.json:
        doc = {
            "ok": all(r.ok for r in results) and not chain,
            "authenticated": all(r.authenticated for r in results),
            "bundles": [
                {
                    "bundle": r.bundle,
                    "ok": r.ok,
                    "problems": r.problems,
                    "info": r.info,
                    "authenticated": r.authenticated,
                    "warnings": r.warnings,
                    "manifest_sha256": r.manifest_sha256,
                    "signoffs": r.signoffs,
                }
                for r in results
            ],
            "chain_problems": chain,
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0 if doc["ok"] else 1
    failed = False
    for result in results:
        if result.ok:
            print(f"OK {result.bundle}" + ("" if result.authenticated else " (NOT AUTHENTICATED)"))
            for warning in result.warnings:
                print(f"  WARNING: {warning}")
            for line in result.info:
                print(f"  {line}")
            for s in result.signoffs:
                print(
                    f"  sign-off: {s['name']} ({s['role']}) at {s['signed_at']}, "
                    f"keyid {s['keyid'][:16]}…"
                )
        else:
            failed = True
            print(f"FAILED {result.bundle}")
            for problem in result.problems:
                print(f"  {problem}")
    for problem in chain:
        failed = True
        print(f"CHAIN {problem}")
    return 1 if failed else 0


def _cmd_keygen(args: argparse.Namespace) -> int:
    from drillbook.evidence.keys import (
        default_key_path,
        generate_key,
        git_would_track,
        key_id,
        private_key_pem,
        public_key_pem,
    )

    private = Path(args.out) if args.out else default_key_path()
    public = private.with_name(private.name + ".pub")
    if git_would_track(private):
        raise ConfigError(
            "is inside a git work tree and not ignored, so a commit would carry the private key; "
            f"write it outside the repository (the default is {default_key_path()}) or ignore it",
            source=str(private),
            field="keygen --out",
        )
    for path in (private, public):
        if path.exists() and not args.force:
            raise ConfigError(
                "exists; pass --force to replace it", source=str(path), field="keygen"
            )
    key = generate_key()
    private.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_key_pem(key))
    os.chmod(private, 0o600)
    public.write_bytes(public_key_pem(key))
    print(f"private key: {private} (mode 0600; keep it secret)")
    print(f"public key:  {public} (give this to auditors)")
    print(f"keyid:       {key_id(key)}")
    if private == default_key_path():
        print("use it:      `drillbook evidence bundle` finds it there")
    else:
        print(f"use it:      drillbook evidence bundle --key {private}")
    return 0


def _cmd_signoff(args: argparse.Namespace) -> int:
    from drillbook.evidence.signoff import sign_off

    written = sign_off(
        Path(args.bundle),
        name=args.name,
        role=args.role,
        key=Path(args.key) if args.key else None,
        note=args.note,
    )
    print(f"signed off by {args.name} ({args.role}): {written}")
    return 0


def _cmd_controls(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from drillbook.clock import get_clock
    from drillbook.evidence.controls import coverage
    from drillbook.evidence.coverage import collect_records, parse_time

    now: datetime = get_clock().wall()
    if args.at:
        parsed = parse_time(args.at)
        if parsed is None:
            raise ConfigError("expected an ISO time like 2026-11-22T00:00:00Z", field="--at")
        now = parsed
    from drillbook.history import resolve_location

    reports = _reports_dir(args)
    history = resolve_location(args.history, lambda: _history_of(args, reports))
    records = collect_records(reports, history)
    rows = []
    for cov in coverage(records, now):
        last = cov.last
        rows.append(
            [
                cov.control.id,
                cov.control.title,
                cov.control.frequency,
                f"{last.at:%Y-%m-%d}" if last else "never",
                f"{last.verdict} ({last.scenario})" if last else "",
                cov.count_12m,
                f"{cov.due:%Y-%m-%d}" if cov.due else "now",
                cov.status.upper() if cov.status != "ok" else "ok",
                ("bundled" if last.bundle else "NOT BUNDLED") if last else "",
            ]
        )
    print(
        tabulate(
            rows,
            headers=[
                "control",
                "title",
                "every",
                "last tested",
                "last result",
                "tests 12m",
                "next due",
                "status",
                "evidence",
            ],
        )
    )
    from drillbook.evidence.controls import known_controls

    unknown = sorted({r.control for r in records} - set(known_controls()))
    if unknown:
        print(f"\ncontrols declared by drills but not in the catalog: {', '.join(unknown)}")
    covered = sum(1 for r in rows if r[7] == "ok")
    print(f"\n{covered}/{len(rows)} controls have current evidence as of {now:%Y-%m-%d}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``evidence`` and its subcommands to the drillbook CLI."""
    evidence = subparsers.add_parser(
        "evidence", help="signed, tamper-evident evidence bundles and control coverage"
    )
    sub = evidence.add_subparsers(dest="evidence_command", metavar="COMMAND", required=True)

    p = sub.add_parser("bundle", help="bundle a run (default: latest) into signed evidence")
    p.add_argument("run", nargs="?", default="latest", help="run id, run folder, or 'latest'")
    p.add_argument("--out", help="output folder (default: <reports-dir>/evidence)")
    p.add_argument(
        "--key",
        help="private key file (else $DRILLBOOK_SIGNING_KEY[_FILE], else keygen's default file)",
    )
    p.add_argument("--notes", help="YAML: participants, issues, remediation, owner, scope")
    p.add_argument("--upload", metavar="S3_URL", help="s3://bucket/prefix with Object Lock")
    p.add_argument("--retain-days", type=int, default=2557, help="COMPLIANCE retention (7 years)")
    p.add_argument("--s3-endpoint-url", help="S3 endpoint (tests, S3-compatible stores)")
    p.add_argument("--s3-region", help="S3 region")
    p.set_defaults(handler=_guard(_cmd_bundle))

    p = sub.add_parser("verify", help="check manifest, event chain, signature and sign-offs")
    p.add_argument("bundles", nargs="+", metavar="bundle", help="folder or .tar.gz, oldest first")
    p.add_argument("--public-key", action="append", help="pinned public key (repeatable)")
    p.add_argument(
        "--trust",
        metavar="FILE",
        help="trust-on-first-use record: the first verify pins the signer's key and the "
        "sign-offs seen; later ones must match (created if missing)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.set_defaults(handler=_guard(_cmd_verify))

    p = sub.add_parser("keygen", help="create an Ed25519 signing key pair")
    p.add_argument(
        "--out",
        help="private key path (default: ~/.config/drillbook/signing.key, where bundle looks)",
    )
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(handler=_guard(_cmd_keygen))

    p = sub.add_parser("sign-off", help="append a signed sign-off to a bundle")
    p.add_argument("bundle")
    p.add_argument("--name", required=True)
    p.add_argument("--role", required=True)
    p.add_argument("--note")
    p.add_argument("--key", help="the signer's private key file")
    p.set_defaults(handler=_guard(_cmd_signoff))

    p = sub.add_parser("controls", help="per-control coverage from bundles and runs")
    p.add_argument("--at", help="evaluate coverage as of this UTC time (default: now)")
    p.add_argument(
        "--history",
        help="history: a SQLite file or a postgresql:// DSN (default: $DRILLBOOK_HISTORY, then "
        "the config's history, then <reports-dir>/history.sqlite)",
    )
    p.set_defaults(handler=_guard(_cmd_controls))
