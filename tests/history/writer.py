"""One runner recording into a history, for the concurrency test (run as its own process).

``writer.py LOCATION JOBS.json GO_FILE MODE``: waits (bounded) for GO_FILE so all writers start
together, then records the journals in JOBS.json, one run per transaction (MODE ``each``, as a
drill session does) or all in one (``batch``, as ``history import`` does), and prints how many
runs were new.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from drillbook.history import record_run, record_runs


def main() -> int:
    location, jobs, go, mode = sys.argv[1:5]
    journals = json.loads(Path(jobs).read_text())
    for _ in range(600):
        if Path(go).exists():
            break
        time.sleep(0.05)
    else:
        return 3
    db: Path | str = location if location.startswith("postgresql://") else Path(location)
    if mode == "each":
        new = sum(record_run(db, j, source=f"writer {jobs}") for j in journals)
    else:
        new = record_runs(db, [(j, f"writer {jobs}") for j in journals])
    print(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
