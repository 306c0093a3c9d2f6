"""A GameDay driven through a real terminal: tmux runs ``drillbook run --gameday`` and a "person"
answers with send-keys. Each step's duration, result and note is recorded, the report shows the
runbook section, the live page follows read-only, and Ctrl-C aborts and reverts."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from drillbook.plugin import needs_backend

from .conftest import REPO, drillbook, journal

NOTE = "step 2 assumed journalctl access we did not have"


class Terminal:
    """One tmux server on a private socket, one window running a command."""

    def __init__(self, sock: Path) -> None:
        self.sock = str(sock)
        self.ended: Path | None = None  # a file the command writes when it ends

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-S", self.sock, *args], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", "gd", "-x", "220", "-y", "60", command)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "gd")

    def wait_for(self, pattern: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if re.search(pattern, text):
                return text
            if self.ended is not None and self.ended.exists():
                break  # the run is over: it will not appear
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} never appeared; screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "gd", *keys)

    def line(self, text: str) -> None:
        self.tmux("send-keys", "-t", "gd", "-l", text)
        self.keys("Enter")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    needs_backend("tmux", None if shutil.which("tmux") else "tmux is not installed")
    term = Terminal(tmp_path / "tmux.sock")
    try:
        yield term
    finally:
        subprocess.run(["tmux", "-S", term.sock, "kill-server"], capture_output=True, timeout=30)


def start_gameday(work: Path, term: Terminal, *extra: str) -> Path:
    out = drillbook(
        work,
        "runbook",
        "import",
        "docs/runbooks/demo_service_down.md",
        "--fault",
        "process.kill",
        "--target",
        "demo-service",
    )
    assert out.returncode == 0, out.stderr
    rc = work / "rc.txt"
    term.ended = rc
    cmd = " ".join(
        shlex.quote(w)
        for w in [
            sys.executable,
            "-m",
            "drillbook.cli",
            "run",
            "--gameday",
            *extra,
            "scenarios/demo_service_down.yaml",
        ]
    )
    env = f"PYTHONPATH={shlex.quote(str(REPO / 'src'))}"
    # After the run: its exit status, and the terminal's mode (a GameDay must give it back).
    stty = work / "stty.txt"
    term.start(
        f"cd {shlex.quote(str(work))} && env {env} {cmd}; echo $? > {rc}.tmp; "
        f"stty -a > {stty}; mv {rc}.tmp {rc}; sleep 600"
    )
    return rc


def wait_rc(rc: Path, timeout: float = 180.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rc.exists() and rc.read_text().strip():
            return int(rc.read_text())
        time.sleep(0.2)
    raise AssertionError("the GameDay never ended")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_gameday_through_a_real_terminal_records_each_step(work: Path, terminal: Terminal) -> None:
    start_gameday(work, terminal, "--gameday-live", "0")
    screen = terminal.wait_for(r"step 2/5 \(manual\).*\n(.*\n)*.*\[d\] done")
    url = re.search(r"followed read-only at (http://127\.0\.0\.1:\d+/)", screen)
    assert url, screen
    # what the room sees: the instruction, the command, the clock against RTO and response target
    assert "$ journalctl -u demo-service" in screen
    assert re.search(
        r"\d\d:\d\d since inject · RTO 15:00 \(\d+% used\) · P2 response target", screen
    )
    # people following along: read-only page and JSON, on 127.0.0.1
    status, state = get(url.group(1) + "state.json")
    assert status == 200
    current = json.loads(state)["current"]
    assert current["name"].startswith("2. Check whether") and current["kind"] == "manual"
    status, page = get(url.group(1))
    assert status == 200 and "GameDay: demo_service_down" in page and "refresh" in page
    post = urllib.request.Request(url.group(1), data=b"x", method="POST")
    try:
        urllib.request.urlopen(post, timeout=5)
        raise AssertionError("the live page accepted a POST")
    except urllib.error.HTTPError as exc:
        assert exc.code == 501

    time.sleep(1.0)  # the step's recorded duration includes this wait
    terminal.keys("f")
    terminal.wait_for(r"failed\. Note \(Enter for none\)")
    terminal.line(NOTE)
    terminal.wait_for(r"step 4/5 \(manual\)(.*\n)*.*\[d\] done")
    terminal.keys("s")
    terminal.wait_for(r"skipped\. Note")
    terminal.keys("Enter")
    terminal.wait_for(r"step 5/5 \(manual\)(.*\n)*.*\[d\] done")
    terminal.keys("x")  # not an answer: ignored
    terminal.keys("d")
    terminal.wait_for(r"done\. Note")
    terminal.line("told #storefront at once")
    code = wait_rc(work / "rc.txt")

    assert code == 1, terminal.screen()  # a step failed: the runbook did not work as written
    drill = journal(work)["drills"][0]
    assert drill["verdict"] == "failed"
    steps = drill["steps"]
    assert [(s["kind"], s.get("result")) for s in steps] == [
        ("scripted", None),
        ("manual", "failed"),
        ("scripted", None),
        ("manual", "skipped"),
        ("manual", "done"),
    ]
    assert [s.get("note") for s in steps if s["kind"] == "manual"] == [
        NOTE,
        "",
        "told #storefront at once",
    ]
    assert steps[1]["duration_s"] >= 1.0
    assert all(s["duration_s"] is not None for s in steps)
    assert any(c["name"].startswith("runbook step 2.") and not c["ok"] for c in drill["checks"])
    assert drill["reverts"] and all(r["ok"] for r in drill["reverts"])

    html = (work / "reports" / "latest" / "report.html").read_text()
    assert "Runbook: Demo service is down" in html
    assert NOTE in html and "Failed or skipped:" in html
    summary = (work / "reports" / "latest" / "summary.md").read_text()
    assert f"failed (note: {NOTE})" in summary
    assert "was skipped: say when it applies" in summary
    assert "told #storefront at once" in summary


def test_ctrl_c_during_a_manual_step_aborts_and_reverts(work: Path, terminal: Terminal) -> None:
    rc = start_gameday(work, terminal)
    terminal.wait_for(r"step 2/5 \(manual\)(.*\n)*.*\[d\] done")
    terminal.keys("C-c")
    assert wait_rc(rc) == 3
    drill = journal(work)["drills"][0]
    assert drill["verdict"] == "aborted"
    assert drill["reverts"] and all(r["ok"] and r["verified"] for r in drill["reverts"])
    # the terminal is back in line mode with echo (cbreak was only for the keys)
    modes = (work / "stty.txt").read_text().split()
    assert "icanon" in modes and "echo" in modes


def test_without_a_terminal_manual_steps_take_answer(work: Path) -> None:
    out = drillbook(
        work,
        "runbook",
        "import",
        "docs/runbooks/demo_service_down.md",
        "--fault",
        "process.kill",
        "--target",
        "demo-service",
    )
    assert out.returncode == 0
    run = drillbook(work, "run", "--gameday", "scenarios/demo_service_down.yaml")
    assert run.returncode == 1
    assert "--answer" in journal(work)["drills"][0]["reasons"][0]
    run = drillbook(
        work, "run", "--gameday", "scenarios/demo_service_down.yaml", "--answer", "*=done"
    )
    assert run.returncode == 0, run.stdout + run.stderr
