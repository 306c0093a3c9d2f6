"""Reading Markdown runbooks: the two common shapes, the safe-to-run markers, and what an
unusual runbook leaves out (said line by line)."""

from __future__ import annotations

from pathlib import Path

from drillbook.runbook.parse import parse_duration_words, parse_runbook

SAMPLES = Path(__file__).resolve().parent / "samples"


def read(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def test_incident_shape_numbered_steps_and_both_safe_markers() -> None:
    book = parse_runbook(read("demo_service_down.md"))
    assert book.shape == "incident"
    assert book.title == "Demo service is down"
    assert book.severity == "P2"  # from "SEV-2"
    assert book.rto_s == 900.0
    steps = book.section("resolution").steps  # type: ignore[union-attr]
    assert [s.number for s in steps] == [1, 2, 3, 4, 5]
    assert steps[0].title == "Announce the incident in #incidents and note the time"
    # step 1: <!-- drill: run --> before the block; step 3: the info string; 2 and 4: unmarked
    assert [b.safe for b in steps[0].blocks] == [True]
    assert [b.safe for b in steps[1].blocks] == [False]
    assert [(b.safe, b.info) for b in steps[2].blocks] == [(True, "sh drill-safe")]
    assert [b.safe for b in steps[3].blocks] == [False]
    assert steps[3].blocks[0].code.splitlines()[1] == (
        "sudo ln -sfn /opt/demo/releases/previous /opt/demo/current"
    )
    assert steps[4].blocks == ()
    # line numbers are the file's
    lines = read("demo_service_down.md").split("\n")
    assert lines[steps[2].blocks[0].line - 1].strip() == "```sh drill-safe"


def test_procedure_shape_sub_headings_table_severity_and_rollback() -> None:
    book = parse_runbook(read("pg_backup_check.md"))
    assert book.shape == "procedure"
    assert (book.severity, book.rto_s, book.rpo_s) == ("P1", 1800.0, 300.0)
    steps = book.section("procedure").steps  # type: ignore[union-attr]
    assert [s.title for s in steps] == [
        "Check there is room for the restore",
        "Fetch the newest base backup",
        "Restore it and replay the WAL archive",
        "Record the restore in the change log",
    ]
    assert [[b.safe for b in s.blocks] for s in steps] == [[True], [False], [False], [True]]
    assert "pg_isready -h 127.0.0.1 -p 5432" in book.section("verification").steps[0].text  # type: ignore[union-attr]
    rollback = book.section("rollback")
    assert rollback is not None and len(rollback.steps) == 2


def test_prose_without_the_safe_block_keeps_the_rest() -> None:
    step = parse_runbook(read("demo_service_down.md")).section("resolution").steps[0]  # type: ignore[union-attr]
    text = step.prose(without=step.blocks)
    assert "date -u" not in text and "drill: run" not in text
    assert text.startswith("Announce the incident in #incidents")


def test_unknown_shape_reports_what_it_left_out_by_line() -> None:
    text = read("queue_backlog.md")
    book = parse_runbook(text)
    assert book.shape == "unknown"
    lines = text.split("\n")
    skipped = dict(book.skipped)
    # the paragraph and the shell block after the numbered list are not steps: both named
    after = lines.index("Afterwards, scale back to 3.") + 1
    fence = lines.index("```sh", after - 1) + 1
    assert "not a step" in skipped[after]
    assert "code block" in skipped[fence]


def test_severity_words_and_durations() -> None:
    assert parse_runbook("# x\n\nSeverity: high\n").severity == "P1"
    assert parse_runbook("# x\n\n**Severity:** SEV0\n").severity == "P0"
    assert parse_runbook("# x\n\n| Priority | P3 |\n").severity == "P3"
    odd = parse_runbook("# x\n\nSeverity: whenever\n")
    assert odd.severity is None and "not understood" in dict(odd.skipped)[3]
    assert parse_duration_words("1 hour 30 min") == 5400.0
    assert parse_duration_words("90 s") == 90.0
    assert parse_duration_words("soon") is None
