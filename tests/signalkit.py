"""For tests that signal a harness they started."""

from __future__ import annotations

import signal

__all__ = ["default_signals"]


def default_signals() -> None:
    """In the harness child (``preexec_fn``): default dispositions, so a runner that ignores
    SIGINT/SIGHUP (nohup, a background job of a non-interactive shell) does not make the harness
    ignore them too; Python only turns SIGINT into KeyboardInterrupt when it starts at default."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
