"""What a drill tells the people around it while it runs: the live progress line, and the
team's start/end/abort notifications with the Pushgateway export.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from drillbook.drillstate import DrillState
from drillbook.redact import redact_text

__all__ = ["Observers"]


class Observers(DrillState):
    """The progress line and the team's notifications; neither can fail a drill."""

    def _load_progress(self) -> Any:
        """Import the progress line's class up front: importing mid-drill would hold the GIL
        while probes are due and skew their timing."""
        if self.progress_stream is None or self.seams.progress is None:
            return None
        try:
            return self.seams.progress()
        except Exception:
            return None

    def _progress(self) -> Any:
        """The live "elapsed vs RTO" line; absent, no line."""
        if self._progress_cls is None or self.progress_stream is None:
            return None
        try:
            return self._progress_cls(
                self.progress_stream, is_tty=self.progress_stream.isatty(), label=self.id
            )
        except Exception:
            return None

    def _tell_team(self, event: str, record: Mapping[str, Any] | None = None) -> None:
        """Start/end/abort notifications and the Pushgateway export (``seams.team``),
        when configured. Never fails or hangs the drill: each call is bounded by a short
        timeout, and a failure is journaled (``notify_failed`` / ``push_failed``)."""
        settings = self.config.backend_settings("monitoring")
        if (
            self.seams.team is None
            or self.config.dry_run
            or not (
                settings.get("notify")
                or settings.get("pushgateway_url")
                or os.environ.get("DRILLBOOK_PUSHGATEWAY_URL")
            )
        ):
            return
        from urllib.parse import urlsplit

        run_id = self.journal.run_id if self.journal else "adhoc"
        try:
            results = self.seams.team()
            targets = results.notification_targets(settings)
            for url, error in results.notify(targets, event, self.id, run_id, record):
                # Only the host: a chat webhook's path is its secret.
                self._event(
                    "notify_failed",
                    notify_event=event,
                    host=urlsplit(url).netloc,
                    detail=redact_text(error)[:300],
                )
            push = results.pushgateway_url(settings) if record is not None else None
            if push and record is not None:
                try:
                    results.push_results(push, record, run_id)
                except Exception as exc:
                    self._event(
                        "push_failed",
                        host=urlsplit(push).netloc,
                        detail=redact_text(f"{type(exc).__name__}: {exc}")[:300],
                    )
        except Exception as exc:
            self._event(
                "notify_failed",
                notify_event=event,
                detail=redact_text(f"{type(exc).__name__}: {exc}")[:300],
            )
