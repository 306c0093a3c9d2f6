"""Build an evidence bundle from a run folder.

Order matters: copy and derive every file, scan them all for secrets the config revealed, hash
them into the manifest, sign a statement over the manifest, then move the folder into place and
write the archive. A failure at any step leaves no half-bundle behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drillbook.clock import get_clock, utc_iso
from drillbook.evidence import layout
from drillbook.evidence.aar import aar_summary, build_aar
from drillbook.evidence.aar_html import render_aar_html
from drillbook.evidence.archive import write_archive
from drillbook.evidence.chain import check_chain
from drillbook.evidence.dsse import envelope_bytes, make_statement, sign_envelope
from drillbook.evidence.errors import EvidenceError, EvidenceInputError
from drillbook.evidence.hashing import sha256_bytes, sha256_file
from drillbook.evidence.index import append_entry, previous_links, read_index
from drillbook.evidence.keys import key_id, public_key_b64, resolve_signing_key
from drillbook.evidence.redaction import SecretFinder
from drillbook.evidence.snapshot import build_snapshot

__all__ = ["build_bundle", "resolve_run_dir"]


def resolve_run_dir(reports_dir: Path, run: str | None) -> Path:
    """``latest``/None → the ``latest`` symlink's target; a run id → ``reports_dir/run``; a path."""
    name = run or "latest"
    candidate = reports_dir / name
    if not candidate.is_dir():
        candidate = Path(name)
    if not candidate.is_dir():
        raise EvidenceInputError("no such run folder", source=str(candidate), field="run")
    return candidate.resolve()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise EvidenceInputError("missing (is the run finished?)", source=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvidenceInputError(f"not valid JSON ({exc})", source=str(path)) from None
    if not isinstance(data, dict):
        raise EvidenceInputError("expected a JSON object", source=str(path))
    return data


def _default_config(journal: Mapping[str, Any]) -> dict[str, Any] | None:
    source = (journal.get("environment") or {}).get("config_source")
    if not source or not Path(str(source)).is_file():
        return None
    try:
        data = yaml.safe_load(Path(str(source)).read_text("utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _copy_run(run_dir: Path, dest: Path, skip: Path | None) -> list[str]:
    """Copy regular files of the run; return the ones skipped (symlinks) for the record."""
    skipped: list[str] = []
    for path in sorted(run_dir.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        rel = path.relative_to(run_dir)
        if path.is_symlink():
            skipped.append(rel.as_posix())
        elif path.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return skipped


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")


def build_bundle(
    run_dir: Path,
    *,
    out_dir: Path | None = None,
    key: Ed25519PrivateKey | Path | str | None = None,
    config_snapshot: Mapping[str, Any] | None = None,
    notes: Mapping[str, Any] | None = None,
    drills_dir: Path | None = None,
) -> Path:
    """Bundle ``run_dir`` and return the bundle folder (its ``.tar.gz`` is written beside it).

    ``out_dir`` defaults to ``<reports dir>/evidence``; the index of bundles (for the per-scenario
    chain) always lives in ``<reports dir>/evidence/index.jsonl`` where reports dir is the run
    folder's parent. ``notes`` adds what only people know to the after-action report
    (participants, issues, remediation, owner, scope, signoff_roles).
    """
    run_dir = Path(run_dir).resolve()
    reports_dir = run_dir.parent
    signing_key = resolve_signing_key(key)
    journal = _read_json(run_dir / "journal.json")
    run_id = str(journal.get("run_id") or run_dir.name)
    events = run_dir / "events.jsonl"
    if not events.is_file():
        raise EvidenceInputError("missing: the run has no event log", source=str(events))
    chain = check_chain(events)
    if not chain.ok:
        raise EvidenceError(
            "refusing to bundle a run whose event chain is already broken: "
            + "; ".join(chain.problems[:5])
        )
    out = Path(out_dir).resolve() if out_dir is not None else reports_dir / "evidence"
    out.mkdir(parents=True, exist_ok=True)
    config = dict(config_snapshot) if config_snapshot is not None else _default_config(journal)
    drills = [d for d in journal.get("drills", []) or [] if isinstance(d, Mapping)]
    scenarios = sorted({str(d.get("scenario") or d.get("id")) for d in drills})
    controls = sorted({str(c) for d in drills for c in d.get("controls", []) or []})
    now = get_clock().wall()
    created_at = utc_iso(now)

    staging = Path(tempfile.mkdtemp(prefix=f".{run_id}-", dir=out))
    try:
        skipped = _copy_run(run_dir, staging / layout.RUN_DIR, out)
        finder = SecretFinder()
        snapshot = build_snapshot(journal, config, finder, drills_dir=drills_dir or Path.cwd())
        snapshot["skipped_symlinks"] = skipped
        _write_json(staging / layout.ENVIRONMENT, snapshot)
        aar = build_aar(journal, notes)
        _write_json(staging / layout.AAR_JSON, aar)
        (staging / layout.AAR_HTML).write_text(render_aar_html(aar), "utf-8")

        files: dict[str, dict[str, Any]] = {}
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            rel = path.relative_to(staging).as_posix()
            leaked = finder.find_in(path.read_bytes())
            if leaked is not None:
                raise EvidenceInputError(
                    f"contains the secret from config field {leaked}; refusing to bundle "
                    "(the run's own files must not carry secrets)",
                    source=rel,
                )
            files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}

        previous = previous_links(read_index(reports_dir), scenarios, run_id)
        manifest = {
            "schema_version": 1,
            "format": layout.BUNDLE_FORMAT,
            "run_id": run_id,
            "created_at": created_at,
            "scenarios": scenarios,
            "controls": controls,
            "previous": previous,
            "events": {"file": layout.EVENTS, "lines": chain.lines, "head_sha256": chain.head},
            "files": files,
        }
        _write_json(staging / layout.MANIFEST, manifest)
        manifest_sha = sha256_file(staging / layout.MANIFEST)
        subjects = {name: entry["sha256"] for name, entry in files.items()}
        subjects[layout.MANIFEST] = manifest_sha
        predicate = {
            "format": layout.BUNDLE_FORMAT,
            "manifest_sha256": manifest_sha,
            "created_at": created_at,
            "signer": {"keyid": key_id(signing_key), "public_key": public_key_b64(signing_key)},
            "previous": previous,
            "after_action": aar_summary(aar),
        }
        statement = make_statement(subjects, layout.PREDICATE_TYPE, predicate)
        (staging / layout.STATEMENT).write_bytes(
            envelope_bytes(sign_envelope(statement, signing_key))
        )

        final = out / run_id
        if final.exists():
            if not (final / layout.MANIFEST).exists():
                raise EvidenceError(f"{final}: exists and is not a bundle; not replacing it")
            shutil.rmtree(final)
        staging.rename(final)
        final.chmod(0o755)  # mkdtemp made it 0700; the bundle is meant to be handed over
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_archive(final)
    append_entry(
        reports_dir,
        {
            "run_id": run_id,
            "created_at": created_at,
            "scenarios": scenarios,
            "controls": controls,
            "drills": [
                {
                    "id": d.get("id"),
                    "scenario": d.get("scenario"),
                    "verdict": d.get("verdict"),
                    "controls": list(d.get("controls", []) or []),
                }
                for d in drills
            ],
            "started_at": journal.get("started_at"),
            "bundle": str(final),
            "manifest_sha256": manifest_sha,
            "statement_sha256": sha256_bytes((final / layout.STATEMENT).read_bytes()),
        },
    )
    return final
