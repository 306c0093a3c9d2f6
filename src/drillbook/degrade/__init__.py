"""Degradation faults: a TCP fault proxy (Toxiproxy's model) and an HTTP fault proxy.

Both run as a detached helper process (:mod:`drillbook.degrade.proxyproc`) so a fault outlives
neither its TTL nor ``drillbook rollback``: the process, its pid file and the route that sends
traffic through it are all named in the intent before anything starts.
"""

from __future__ import annotations

__all__: list[str] = []
