"""Building a bundle: contents, after-action report, chain of bundles, redaction."""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from evidence_fixtures import CANARIES, CANARY_CONFIG, MakeRun

from drillbook.evidence import build_bundle, verify_bundle
from drillbook.evidence.archive import archive_path
from drillbook.evidence.errors import EvidenceError, EvidenceInputError
from drillbook.evidence.hashing import sha256_file
from drillbook.evidence.keys import private_key_pem
from drillbook.evidence.redaction import REDACTED


def test_bundle_holds_every_file_and_verifies(
    make_run: MakeRun, signing_key: Ed25519PrivateKey, reports_dir: Path
) -> None:
    run_dir = make_run()
    folder = build_bundle(run_dir, key=signing_key, config_snapshot=CANARY_CONFIG)
    assert folder == reports_dir / "evidence" / run_dir.name
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert names == [
        "after-action.html",
        "after-action.json",
        "environment.json",
        "manifest.json",
        "run/events.jsonl",
        "run/journal.json",
        "run/junit.xml",
        "run/report.md",
        "statement.dsse.json",
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(folder / name)
    assert manifest["events"]["lines"] == 14
    assert manifest["previous"] == {"process_restart": None}
    result = verify_bundle(folder)
    assert result.ok, result.problems
    archived = verify_bundle(archive_path(folder))
    assert archived.ok, archived.problems
    with tarfile.open(archive_path(folder)) as tar:
        assert f"{run_dir.name}/manifest.json" in tar.getnames()


def test_statement_is_in_toto_v1_in_dsse(make_run: MakeRun, signing_key: Ed25519PrivateKey) -> None:
    import base64

    folder = build_bundle(make_run(), key=signing_key)
    envelope = json.loads((folder / "statement.dsse.json").read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://drillbook.dev/evidence/v1"
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects["manifest.json"] == sha256_file(folder / "manifest.json")
    assert subjects["run/events.jsonl"] == sha256_file(folder / "run/events.jsonl")
    summary = statement["predicate"]["after_action"]
    assert summary["results"] == [{"drill": "process_restart", "verdict": "passed", "reasons": []}]
    assert summary["controls"] == ["ISO22301-8.5", "SOC2-A1.3"]


def test_after_action_report_has_sp800_84_contents(
    make_run: MakeRun, signing_key: Ed25519PrivateKey
) -> None:
    folder = build_bundle(
        make_run(verdict="failed"),
        key=signing_key,
        notes={
            "participants": [{"name": "Bea", "role": "incident commander"}],
            "owner": "platform-team",
            "remediation": [{"issue": "I-1", "action": "tune restart backoff", "owner": "bea"}],
        },
    )
    aar = json.loads((folder / "after-action.json").read_text())
    for key in (
        "scope",
        "objectives",
        "participants",
        "timeline",
        "integrity_checks",
        "issues",
        "remediation",
        "signoffs",
        "controls",
        "results",
    ):
        assert key in aar, key
    timeline = aar["timeline"][0]
    assert timeline["t_inject"] == "2026-11-22T14:01:02.433Z"
    assert timeline["t_ack"] == "2026-11-22T14:01:02.733Z"  # first recovery step
    assert timeline["t_restore"] and timeline["t_verified"] and timeline["t_revert_confirmed"]
    rto = aar["objectives"][0]["rto"]
    assert (rto["target_s"], rto["actual_s"], rto["met"]) == (30.0, 45.0, False)
    assert aar["issues"][0]["title"].startswith("check rta<=rto failed")
    assert aar["issues"][0]["owner"] == "platform-team"
    assert aar["remediation"][0]["action"] == "tune restart backoff"
    assert aar["participants"] == [{"name": "Bea", "role": "incident commander"}]
    assert [c["name"] for c in aar["integrity_checks"]] == [
        "rpa<=rpo",
        "verify:rows",
        "ledger lost_writes",
    ]
    html = (folder / "after-action.html").read_text()
    assert "tune restart backoff" in html
    assert "30.000s" in html and "45.000s" in html  # RTO target and RTA actual, in ms
    # Journal text is escaped, never interpreted as markup.
    assert "&lt;b&gt;and&lt;/b&gt;" in html and "<b>and</b>" not in html


def test_bundles_of_a_scenario_chain(
    make_run: MakeRun, signing_key: Ed25519PrivateKey, reports_dir: Path
) -> None:
    from drillbook.evidence.verify import verify_bundle_chain

    first = build_bundle(make_run("run-1"), key=signing_key)
    second = build_bundle(make_run("run-2"), key=signing_key)
    other = build_bundle(make_run("run-3", scenario="db_restore"), key=signing_key)
    third = build_bundle(make_run("run-4"), key=signing_key)
    m2 = json.loads((second / "manifest.json").read_text())
    assert m2["previous"]["process_restart"]["manifest_sha256"] == sha256_file(
        first / "manifest.json"
    )
    m4 = json.loads((third / "manifest.json").read_text())
    assert m4["previous"]["process_restart"]["run_id"] == "run-2"
    assert json.loads((other / "manifest.json").read_text())["previous"] == {"db_restore": None}
    results = [verify_bundle(b) for b in (first, second, other, third)]
    assert all(r.ok for r in results)
    assert verify_bundle_chain(results) == []
    # Leaving out the middle bundle of the scenario shows as a broken link, naming both ends.
    gap = verify_bundle_chain([results[0], results[3]])
    assert len(gap) == 1 and "run-4" in gap[0] and "previous bundle of process_restart" in gap[0]
    index = (reports_dir / "evidence" / "index.jsonl").read_text().splitlines()
    assert [json.loads(line)["run_id"] for line in index] == ["run-1", "run-2", "run-3", "run-4"]


def test_no_planted_secret_reaches_the_bundle(
    make_run: MakeRun, signing_key: Ed25519PrivateKey
) -> None:
    folder = build_bundle(make_run(), key=signing_key, config_snapshot=CANARY_CONFIG)
    blobs = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    blobs[archive_path(folder)] = archive_path(folder).read_bytes()
    with tarfile.open(archive_path(folder)) as tar:
        for member in tar.getmembers():
            extracted = tar.extractfile(member)
            if extracted is not None:
                blobs[Path(member.name)] = extracted.read()
    for path, data in blobs.items():
        for canary in CANARIES:
            assert canary.encode() not in data, f"{canary} leaked into {path}"
    env = json.loads((folder / "environment.json").read_text())
    dsn = env["config"]["targets"]["pg-primary"]["dsn"]
    assert dsn == f"postgresql://drill:{REDACTED}@127.0.0.1:5432/app"
    assert env["config"]["targets"]["api"]["token"] == REDACTED
    assert env["config"]["safety"] == CANARY_CONFIG["safety"]  # the rest survives
    assert env["packages"]["drillbook"] == "0.1.0"
    assert env["git_commit"] == "abc123"


def test_run_file_carrying_a_config_secret_is_refused(
    make_run: MakeRun, signing_key: Ed25519PrivateKey, reports_dir: Path
) -> None:
    run_dir = make_run(extra={"report.md": "dsn was CANARY-SECRET-DSN-PW oops\n"})
    with pytest.raises(EvidenceInputError) as info:
        build_bundle(run_dir, key=signing_key, config_snapshot=CANARY_CONFIG)
    message = str(info.value)
    assert "run/report.md" in message and "targets.pg-primary.dsn" in message
    assert "CANARY" not in message
    evidence = reports_dir / "evidence"
    assert [p.name for p in evidence.iterdir()] == []  # no half-built bundle left behind


def test_broken_event_chain_is_refused(make_run: MakeRun, signing_key: Ed25519PrivateKey) -> None:
    run_dir = make_run()
    lines = (run_dir / "events.jsonl").read_bytes().splitlines(keepends=True)
    (run_dir / "events.jsonl").write_bytes(b"".join(lines[:3] + lines[4:]))
    with pytest.raises(EvidenceError, match=r"events.jsonl:4: prev expected"):
        build_bundle(run_dir, key=signing_key)


def test_key_from_env_file_and_missing_key(
    make_run: MakeRun,
    signing_key: Ed25519PrivateKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_dir = make_run()
    with pytest.raises(EvidenceInputError, match="no signing key"):
        build_bundle(run_dir)
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(private_key_pem(signing_key))
    monkeypatch.setenv("DRILLBOOK_SIGNING_KEY_FILE", str(key_file))
    folder = build_bundle(run_dir)
    result = verify_bundle(folder)
    from drillbook.evidence.keys import key_id

    assert result.ok and key_id(signing_key) in result.info[0]


def test_rebundling_a_run_replaces_it_and_does_not_link_to_itself(
    make_run: MakeRun, signing_key: Ed25519PrivateKey
) -> None:
    run_dir = make_run()
    build_bundle(run_dir, key=signing_key)
    folder = build_bundle(run_dir, key=signing_key)
    assert json.loads((folder / "manifest.json").read_text())["previous"] == {
        "process_restart": None
    }
    assert verify_bundle(folder).ok


def test_created_at_comes_from_the_clock(make_run: MakeRun, signing_key: Ed25519PrivateKey) -> None:
    folder = build_bundle(make_run(), key=signing_key)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["created_at"] == "2026-11-22T14:00:00.000Z"
    with tarfile.open(archive_path(folder)) as tar:
        expected = datetime(2026, 11, 22, 14, tzinfo=UTC).timestamp()
        assert {m.mtime for m in tar.getmembers()} == {expected}
