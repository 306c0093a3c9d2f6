"""A forked helper for ``drillbook run scenarios/x.yaml``: it reads the config and validates the
scenarios while the parent loads the engine, and renders the reports and the history from
``journal.json`` after the drills, its imports having overlapped the drill on another core.

Why: a whole run's wall time was the sum of work that need not be serial. Reading the config
(PyYAML's import alone is ~6 ms, most of it compiling its scanner's patterns) and validating the
scenarios (the scenario module, the schema checker, the registry: ~6 ms) waited for nothing but
ran before the engine's imports; what a run does after its last drill (``report.html`` through
Jinja2, ``summary.md`` and the terminal table through tabulate, the history database) needed
~30 ms of imports before it rendered anything, between the drill's end and the process's exit
(benchmarks/results/overhead.md). Forked first, before any thread exists, the child reads the
config, validates, and sends the config and the scenarios back (pickled: it is this program's
own copy), imports and warms the renderer, and waits; when the run ends, the parent writes
``journal.json`` and the child renders from it (exactly what ``drillbook report`` re-renders
from), records the history, formats the table and answers with what it wrote.

The parent never depends on it: no fork on a one-core machine, with other threads running, or
with ``DRILLBOOK_REPORT_WORKER=0``; a child that died, failed or answered nothing means the
parent reads, validates or renders in-process as before (a bad config is reported that way, by
the parent, with the same words and exit code). The child runs at nice 10, ignores SIGINT,
SIGTERM and SIGHUP (an interrupted run still gets its reports: the parent reverts, then asks)
and leaves when its pipe closes, so a parent killed with SIGKILL leaves no helper behind; one
that has no job left (the run ended before its reports) is killed, as it has written nothing.
It exits with ``os._exit``: the parent's buffers and exit handlers are not its to run.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["WORKER_ENV", "Prepared", "ReportWorker", "WorkerReply"]

#: What the child prepares for the parent: the config, the scenarios, the validation's error lines.
Prepared = tuple[Any, list[Any], list[str]]

#: ``0`` turns the helper off (render in-process), ``1`` forks even on a one-core machine.
WORKER_ENV = "DRILLBOOK_REPORT_WORKER"
#: What the child imports while the drill runs: everything rendering and recording needs.
_PRELOAD = (
    "drillbook.report",
    "drillbook.report.csvout",
    "drillbook.report.html",
    "drillbook.report.journal",
    "drillbook.report.markdown",
    "drillbook.history",
    "drillbook.session",
    "tabulate",
)
#: How long ``close`` waits for a child that is still busy before killing it.
_CLOSE_WAIT_S = 10.0


@dataclass
class WorkerReply:
    """What the child did: the files it wrote, what failed (one line each) and the table."""

    written: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    table: str | None = None
    pid: int = 0  # the process that rendered: not the parent's


class ReportWorker:
    """The parent's handle on the forked child: one job, then it is gone."""

    def __init__(self, pid: int, request_fd: int, reply_fd: int) -> None:
        self.pid = pid
        self._request_fd: int | None = request_fd
        self._reply_fd: int | None = reply_fd
        self._reaped = False
        self._asked = False  # a report job was sent: the child is (or was) answering it
        self._preparing = False  # the child owes the parent one prepared message first

    @classmethod
    def start(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        prepare: Callable[[], Prepared] | None = None,
    ) -> ReportWorker | None:
        """Fork the child, or None when forking would not help or is not safe here.

        ``prepare``: called in the child first, ``(config, scenarios, error lines)``; the parent
        gets its answer from :meth:`prepared`, and the child warms the renderer on the last
        run's ``journal.json`` in the config's reports folder."""
        setting = (os.environ if environ is None else environ).get(WORKER_ENV, "")
        if setting == "0" or not hasattr(os, "fork"):
            return None
        if setting != "1" and len(os.sched_getaffinity(0)) < 2:
            return None  # one core: the child's imports would only compete with the parent's
        if threading.active_count() > 1:
            return None  # forking a threaded process copies locks in unknown states
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child
            code = 0
            try:
                os.close(request_w)
                os.close(reply_r)
                _child(request_r, reply_w, prepare)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(request_r)
        os.close(reply_w)
        worker = cls(pid, request_w, reply_r)
        worker._preparing = prepare is not None
        return worker

    def prepared(self) -> Prepared | None:
        """What ``prepare`` returned in the child; None when it has no answer (it raised, died
        or garbled it: the caller reads and validates in-process)."""
        if not self._preparing or self._reply_fd is None:
            return None
        self._preparing = False
        try:
            header = _read_exactly(self._reply_fd, 8)
            body = _read_exactly(self._reply_fd, int.from_bytes(header, "big"))
            answer = pickle.loads(body)
            if answer is None:
                return None  # prepare raised in the child: the parent will say why
            config, scenarios, lines = answer
            return config, list(scenarios), [str(line) for line in lines]
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError):
            self.close()  # it died or garbled: nothing more will come from it
            return None

    def finish(
        self,
        run_dir: Path,
        *,
        history_path: Path | None,
        table_records: Sequence[Mapping[str, Any]],
    ) -> WorkerReply | None:
        """Ask the child to render ``run_dir``'s reports from its ``journal.json``, record the run
        in ``history_path`` and format the table; None when it could not (the caller renders)."""
        if self._request_fd is None or self._reply_fd is None:
            return None
        job = {
            "run_dir": str(run_dir),
            "history_path": str(history_path) if history_path is not None else None,
            "table_records": list(table_records),
        }
        if self._preparing:
            self.prepared()  # not asked for: read it off the pipe all the same
            if self._reply_fd is None or self._request_fd is None:
                return None
        self._asked = True
        try:
            _write_all(self._request_fd, json.dumps(job, default=str).encode())
            os.close(self._request_fd)
            self._request_fd = None
            raw = _read_all(self._reply_fd)
        except OSError:
            self.close()
            return None
        # It has answered and is exiting; it is reaped by close(), at the very end (tearing a
        # process down takes ~2 ms; nothing needs to wait for that here).
        try:
            doc = json.loads(raw)
            return WorkerReply(
                written=[Path(p) for p in doc["written"]],
                problems=[str(p) for p in doc["problems"]],
                table=doc["table"],
                pid=int(doc["pid"]),
            )
        except (ValueError, KeyError, TypeError):
            return None  # it died mid-way: nothing trustworthy came back

    def close(self) -> None:
        """Close the pipes and reap the child; idempotent. A child that was never asked for
        reports is killed first (it has written nothing and has nothing to finish); one that
        was asked leaves on its own once it has answered (killed after 10 s all the same)."""
        for name in ("_request_fd", "_reply_fd"):
            fd = getattr(self, name)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, None)
        if self._reaped:
            return
        self._reaped = True
        if not self._asked:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + _CLOSE_WAIT_S
        while True:
            try:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                return
            if time.monotonic() > deadline:
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                return
            time.sleep(0.0005)  # it exits as soon as it has answered: a short wait


def _child(request_fd: int, reply_fd: int, prepare: Callable[[], Prepared] | None) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    # Background work: where a core is short, the drill (its probes, its timing) goes first.
    with contextlib.suppress(OSError):
        os.nice(10)
    reports_dir: Path | None = None
    if prepare is not None:
        answer: Prepared | None
        try:
            answer = prepare()
        except Exception:
            answer = None  # the parent does it again in-process and reports it its own way
        body = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(reply_fd, len(body).to_bytes(8, "big") + body)
        if answer is not None:
            reports_dir = getattr(answer[0], "reports_dir", None)
    import importlib

    for module in _PRELOAD:
        importlib.import_module(module)
    _warm(reports_dir)
    raw = _read_all(request_fd)
    os.close(request_fd)
    if not raw:
        return  # the parent closed the pipe without a job: the run ended before reports
    job = json.loads(raw)
    _write_all(reply_fd, json.dumps(_do_job(job)).encode())
    os.close(reply_fd)  # the answer is complete now, not when this process is torn down


#: A previous run's journal larger than this is not rendered for warmth (it would still be
#: rendering when the real job arrives).
_WARM_LIMIT_BYTES = 256 * 1024


def _warm(reports_dir: Path | None) -> None:
    """Render into memory once while the drill runs: a page's first render in a process pays
    for template and code paths taken the first time (~2 ms measured), the real one should not;
    the same for recording the history (into a database in memory). The last run's journal takes
    the paths a real run takes; nothing is written."""
    from drillbook.report.html import environment, render_run_html
    from drillbook.report.markdown import render_summary_md

    environment().get_template("report.html.j2")  # compiled (or read from the cache) now
    doc: Any = {"run_id": "warm-up", "drills": [], "environment": {}, "exit_status": 0}
    latest = reports_dir / "latest" / "journal.json" if reports_dir is not None else None
    try:
        if latest is not None and latest.stat().st_size <= _WARM_LIMIT_BYTES:
            doc = json.loads(latest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    with contextlib.suppress(Exception):  # warmth only: a page that fails here is no news
        render_run_html(doc)
        render_summary_md(doc)
    with contextlib.suppress(Exception):  # the history's code paths, on a database in memory
        from drillbook.history import record_run

        record_run(Path(":memory:"), doc)


def _do_job(job: Mapping[str, Any]) -> dict[str, Any]:
    from drillbook.session import _record_history_at, _write_reports, drill_table

    run_dir = Path(job["run_dir"])
    written: list[str] = []
    problems: list[str] = []
    try:
        doc = json.loads((run_dir / "journal.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"written": [], "problems": [f"reports: {exc}"], "table": None, "pid": os.getpid()}
    history_problem: list[str] = []

    def record() -> None:
        try:
            _record_history_at(Path(job["history_path"]), doc)
        except Exception as exc:
            history_problem.append(f"history: {type(exc).__name__}: {exc}")

    # SQLite's commit waits on fsync without the GIL: the history is recorded while the pages
    # render, not after them.
    recorder = threading.Thread(target=record, name="drillbook-history")
    if job.get("history_path"):
        recorder.start()
    try:
        written += [str(p) for p in _write_reports(run_dir, doc)]
    except Exception as exc:
        problems.append(f"reports: {type(exc).__name__}: {exc}")
    table = drill_table(job["table_records"]) if job["table_records"] else None
    if recorder.is_alive():
        recorder.join()
    problems += history_problem
    return {"written": written, "problems": problems, "table": table, "pid": os.getpid()}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, n: int) -> bytes:
    chunks: list[bytes] = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the helper closed its pipe")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
