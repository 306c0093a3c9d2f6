"""Runbooks in, drills out: a team's Markdown runbook as a drill, walked through in a GameDay.

``drillbook runbook import RUNBOOK.md`` turns the runbook's procedure into a scenario
(:mod:`.importer`, from the parse in :mod:`.parse`); ``drillbook run --gameday`` walks the people
in the room through its manual steps (:mod:`.gameday`, optionally followed on a local page,
:mod:`.live`); the reports gain a runbook section (:mod:`.findings`) and ``drillbook runbook
trend`` shows each step's duration across drills (:mod:`.trend`). A changed runbook is noticed
at the next drill (:mod:`.drift`).

Nothing here is imported by ``import drillbook``: the Markdown parser and the terminal code load
only when a runbook command or a GameDay asks for them.
"""

from __future__ import annotations

__all__: list[str] = []
