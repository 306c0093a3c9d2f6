"""Helpers for the monitoring tests (a module of its own: `conftest` names clash across folders)."""

from __future__ import annotations

import socket

__all__ = ["dead_port"]


def dead_port() -> int:
    """A port nothing listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
