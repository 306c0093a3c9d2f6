"""``memory.usage``: the kernel's memory counters, as a runbook's High Memory check reads them.

Host-wide (``/proc/meminfo``: ``min_available`` bytes, ``max_percent`` used) and per process set
(``match``: a regular expression over command lines, summed VmRSS under ``max_rss``). Its value is
the matched processes' resident bytes when ``match`` is given, else MemAvailable."""

from __future__ import annotations

import os
import re
from pathlib import Path

from drillbook.backends.base import Probe
from drillbook.clock import get_clock
from drillbook.model import ProbeResult
from drillbook.pressure import procs
from drillbook.pressure.sizes import parse_size

__all__ = ["MemoryProbe"]


def matching_rss(pattern: str) -> int:
    rx = re.compile(pattern)
    total = 0
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cmd and rx.search(cmd):
            total += procs._rss(int(entry))
    return total


class MemoryProbe(Probe):
    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        problems = []
        available = procs.mem_available()
        value = available
        if "min_available" in self.ctx.params:
            floor = parse_size(self.ctx.param("min_available"), field="min_available")
            if available < floor:
                problems.append(f"MemAvailable {available} < {floor}")
        if "max_percent" in self.ctx.params:
            total = procs.mem_total()
            pct = 100.0 * (total - available) / total
            if pct > float(self.ctx.param("max_percent")):
                problems.append(f"used {pct:.1f}% > {self.ctx.param('max_percent')}%")
        if "match" in self.ctx.params:
            value = matching_rss(str(self.ctx.param("match")))
            bound = parse_size(self.ctx.param("max_rss", "1GiB"), field="max_rss")
            if value > bound:
                problems.append(
                    f"processes matching {self.ctx.param('match')!r}: RSS {value} > {bound}"
                )
        detail = "; ".join(problems) or f"MemAvailable {available}"
        return ProbeResult(not problems, get_clock().monotonic() - start, detail, value=value)
