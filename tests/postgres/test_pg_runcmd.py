"""A failing command's message keeps its root cause, and a held lock file is recognised."""

from __future__ import annotations

import re

import pytest

from drillbook.backends.postgres.runcmd import lock_held, root_cause, run_command
from drillbook.errors import RecoveryError


def test_the_fatal_line_survives_a_long_output() -> None:
    noise = "\n".join(f"LOG:  checkpoint {i} complete" for i in range(200))
    text = f'FATAL:  lock file "/run/postgresql/.s.PGSQL.5432.lock" already exists\n{noise}'
    message = root_cause(text)
    assert "FATAL:  lock file" in message
    assert lock_held(message)
    assert not lock_held("FATAL:  the database system is starting up")


def test_a_command_needs_sh_for_shell_syntax() -> None:
    with pytest.raises(RecoveryError, match=re.escape("stop_command 'false || true' failed")):
        run_command("false || true", 10, "stop_command")  # no shell: `||` is an argument
    run_command("sh -c 'false || true'", 10, "stop_command")


def test_a_failing_command_reports_its_error_line() -> None:
    with pytest.raises(RecoveryError) as caught:
        run_command(
            "sh -c 'echo Error: /var/lib/postgresql/15/main is not accessible >&2; "
            "seq 1 400 >&2; exit 1'",
            10,
            "stop_command",
        )
    assert "Error: /var/lib/postgresql/15/main is not accessible" in str(caught.value)
