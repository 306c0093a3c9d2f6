"""The wait-for-recovery progress line: live on a TTY, throttled plain lines in CI."""

from __future__ import annotations

import io

from drillbook.report.progress import Progress


def test_tty_redraws_one_line_in_place() -> None:
    out = io.StringIO()
    p = Progress(out, is_tty=True)
    p.update(3.0, 30.0, "http: down (connection refused)")
    p.update(3.25, 30.0, "http: up")
    p.close()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    first, second = text.split("\r")[1:]
    assert "3.00s / RTO 30.0s" in first and "10%" in first and "connection refused" in first
    # The shorter second line is padded so no tail of the first stays on screen.
    assert len(second.rstrip("\n")) >= len(first)
    assert second.startswith("recovering 3.25s / RTO 30.0s")


def test_ci_prints_a_line_every_interval() -> None:
    out = io.StringIO()
    p = Progress(out, is_tty=False, interval_s=5.0)
    for tick in range(0, 23):
        p.update(tick * 0.5, 30.0, f"http: down ({tick})")
    p.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split()[1] for line in lines] == ["0ms", "5.00s", "10.0s"]
    assert lines[1].endswith("http: down (10)")


def test_over_rto_and_no_rto() -> None:
    p = Progress(io.StringIO(), is_tty=False)
    over = p.line(45.0, 30.0, "db: down")
    assert "OVER RTO" in over and "[########################]" in over and "150%" in over
    assert "(no RTO)" in p.line(2.0, None, "db: up")


def test_close_with_final_message_on_tty_clears_the_line() -> None:
    out = io.StringIO()
    p = Progress(out, is_tty=True)
    p.update(1.0, 10.0, "http: up")
    p.close("recovered in 1.00s")
    assert out.getvalue().endswith("\rrecovered in 1.00s\n")
