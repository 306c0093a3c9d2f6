"""``demo.errors``: the demo service answers HTTP 500 on a fraction of its requests.

The sandbox's stand-in for an application that starts failing (a bad deploy, a broken
dependency): it exists so a high-error-rate alert drill has something real to see, through the
demo service's ``POST /fault?error_rate=R`` endpoint. Revert sets the rate back to 0; a restart
of the service reverts it too (the rate lives in the process), so a crashed drill leaves nothing.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from drillbook.backends.base import Context, Fault, RecoveryStep
from drillbook.backends.local.service import LocalService
from drillbook.errors import FaultError

__all__ = ["DemoErrors", "DemoErrorsStop"]


class DemoErrors(Fault):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.service = LocalService(ctx.target(), ctx.state_dir, ctx.workdir)
        self.rate = float(ctx.param("error_rate", 1.0))

    def plan(self) -> str:
        return f"{self.service.target.name} answers 500 on {self.rate:.0%} of requests"

    def _set(self, rate: float) -> None:
        url = self.service.url(f"/fault?error_rate={rate}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5):
                pass
        except (OSError, urllib.error.URLError) as exc:
            raise FaultError(f"{url}: {exc}") from None

    def _errors(self) -> bool:
        """Whether a GET of the health endpoint answers 500 (looked at a few times: the rate
        may be below 1)."""
        for _ in range(20):
            try:
                with urllib.request.urlopen(self.service.url(), timeout=2):
                    pass
            except urllib.error.HTTPError as exc:
                if exc.code == 500:
                    return True
            except OSError:
                return False
        return False

    def inject(self) -> None:
        self._set(self.rate)

    def verify_injected(self) -> bool:
        return self._errors()

    def revert(self) -> None:
        if self.service.port is None:
            return  # never started: nothing to revert
        try:
            self._set(0.0)
        except FaultError:
            if self.service.pids():
                raise  # running and refusing: the fault may still be on
            # not running: a restarted process starts with no errors

    def verify_reverted(self) -> bool:
        return not self._errors()


class DemoErrorsStop(RecoveryStep):
    """The runbook's rollback: the demo service stops failing (``error_rate=0``)."""

    def run(self) -> str:
        fault = DemoErrors(self.ctx)
        fault._set(0.0)
        return f"{fault.service.target.name} answers normally again"
