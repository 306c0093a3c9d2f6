"""Recovery steps for local targets: ``command``, ``process.start`` and ``process.continue``."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess

from drillbook.backends.base import RecoveryStep
from drillbook.backends.local.service import LocalService
from drillbook.clock import get_clock
from drillbook.errors import ConfigError, RecoveryError
from drillbook.procs import process_state
from drillbook.redact import redact_text

__all__ = ["CommandStep", "ProcessContinue", "ProcessStart"]


class CommandStep(RecoveryStep):
    """Run the runbook's command (``command:`` list or string), bounded by the drill's deadline."""

    def run(self) -> str:
        cmd = self.ctx.param("command")
        if not cmd:
            raise ConfigError("the command step needs `command:`", field="command")
        argv = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
        timeout = (
            None
            if self.ctx.deadline is None
            else max(0.1, self.ctx.deadline - get_clock().monotonic())
        )
        expect = int(self.ctx.param("expect_exit", 0))
        try:
            out = subprocess.run(
                argv, capture_output=True, timeout=timeout, check=False, cwd=self.ctx.workdir
            )
        except subprocess.TimeoutExpired:
            raise RecoveryError(f"command timed out: {redact_text(' '.join(argv))}") from None
        except OSError as exc:
            raise RecoveryError(f"command failed to start: {exc}") from None
        if out.returncode != expect:
            # Redact the whole output, then cut: a cut first can split ``AWS_SECRET_ACCESS_KEY=``
            # into ``EY=`` and leave the value with no name the patterns know.
            text = redact_text((out.stderr or out.stdout or b"").decode(errors="replace").strip())
            raise RecoveryError(f"command exited {out.returncode}: {text[-300:]}")
        return f"exit {out.returncode}"


class ProcessStart(RecoveryStep):
    """Start a local target's service (the runbook's "start it again")."""

    def run(self) -> str:
        service = LocalService(self.ctx.target(), self.ctx.state_dir, self.ctx.workdir)
        started = service.start()
        return "started" if started else "already running"


class ProcessContinue(RecoveryStep):
    """SIGCONT every stopped process of a local target."""

    def run(self) -> str:
        service = LocalService(self.ctx.target(), self.ctx.state_dir, self.ctx.workdir)
        resumed = [p for p in service.pids() if process_state(p) in ("T", "t")]
        for pid in resumed:
            os.kill(pid, signal.SIGCONT)
        return f"resumed {len(resumed)} process(es)"
