"""Client of the supervisor's control API, used by ``sandbox`` commands, faults and steps."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from drillbook.backends.postgres.sandbox.state import load_state

__all__ = ["SupervisorClient", "SupervisorDown"]


class SupervisorDown(RuntimeError):
    """The supervisor is not running (never started, shut down, or killed)."""


class SupervisorClient:
    def __init__(self, root: Path, timeout_s: float = 30.0) -> None:
        self.root = root
        self.timeout_s = timeout_s

    def _url(self, path: str) -> str:
        sup = load_state(self.root).get("supervisor") or {}
        if not sup.get("port"):
            raise SupervisorDown(f"no supervisor for sandbox {self.root}")
        return f"http://127.0.0.1:{sup['port']}{path}"

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self._url(path), data=data, method="GET" if data is None else "POST"
        )
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                result: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise RuntimeError(f"supervisor {path}: {exc.code} {detail}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise SupervisorDown(f"supervisor unreachable: {exc}") from None
        return result

    def status(self) -> dict[str, Any]:
        return self._call("/status")

    def start(self, name: str) -> int:
        return int(self._call("/start", {"name": name})["pid"])

    def stop(self, name: str, timeout_s: float = 15.0) -> bool:
        return bool(self._call("/stop", {"name": name, "timeout_s": timeout_s})["clean"])

    def shutdown(self) -> None:
        self._call("/shutdown", {})
