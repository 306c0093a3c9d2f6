"""Resource degradation faults: CPU, memory and I/O pressure, disk fill, TLS certificate faults
and the ``tls`` probe, clock skew.

Every fault here starts something that must not outlive the drill (a hog process, a fill file, a
swapped certificate), so each one records in its ``state()`` exactly what to take back (pids, file
paths, backup paths and hashes), bounds itself (a hard cap on what it takes and a self-imposed
deadline), and reverts idempotently from a fresh process (``drillbook rollback``, the TTL
watchdog). Registration lives in :mod:`drillbook.pressure.registry`.
"""

from __future__ import annotations

__all__: list[str] = []
