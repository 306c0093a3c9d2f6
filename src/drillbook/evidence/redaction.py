"""Secret redaction for what enters a bundle.

Uses the core's ``drillbook.redact.redact`` when it exists; until then (and as a second line of
defence) this module redacts by key name and by DSN userinfo, and remembers the secret values it
removed so the bundle builder can refuse any file that still contains one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "SecretFinder", "redact_config"]

try:  # The core's marker, so every drillbook output redacts the same way.
    from drillbook.redact import REDACTED as _CORE_REDACTED  # type: ignore[import-not-found,unused-ignore]

    REDACTED: str = str(_CORE_REDACTED)
except ImportError:  # pragma: no cover - before the core redactor existed
    REDACTED = "***REDACTED***"

_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|"
    r"credential|auth|session|cookie|dsn|conn(ection)?[_-]?string|^key$|_key$|signing)",
    re.IGNORECASE,
)
# scheme://user:password@host  -> the password; scheme://token@host -> the token
_DSN_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
# key=value pairs in libpq-style strings: password=xyz
_KV_SECRET = re.compile(
    r"(?P<k>\b(password|passwd|token|secret|sslpassword)\s*=\s*)(?P<v>[^\s&;]+)", re.IGNORECASE
)


class SecretFinder:
    """Redacts a config tree and collects the secret values it saw (for leak scanning)."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # secret value -> config path it came from

    def _note(self, value: str, path: str) -> None:
        if len(value) >= 4 and REDACTED not in value:
            self.secrets.setdefault(value, path)
            from drillbook.secretsources import register_config_secrets

            # Scrubbed by value in everything written from now on (a DSN: its password only).
            register_config_secrets(value, key="secret")

    def redact_string(self, text: str, path: str) -> str:
        def dsn(match: re.Match[str]) -> str:
            userinfo = match.group("userinfo")
            user, sep, password = userinfo.partition(":")
            if sep:
                self._note(password, path)
                return f"{match.group('scheme')}{user}:{REDACTED}@"
            self._note(userinfo, path)
            return f"{match.group('scheme')}{REDACTED}@"

        def kv(match: re.Match[str]) -> str:
            self._note(match.group("v"), path)
            return f"{match.group('k')}{REDACTED}"

        return _KV_SECRET.sub(kv, _DSN_USERINFO.sub(dsn, text))

    def redact(self, obj: Any, path: str = "") -> Any:
        if isinstance(obj, Mapping):
            out: dict[str, Any] = {}
            for key, value in obj.items():
                sub = f"{path}.{key}" if path else str(key)
                if _SECRET_KEY.search(str(key)) and isinstance(value, str | int | float | bytes):
                    self._note(str(value), sub)
                    # Keep a DSN's shape where possible: redact only what is secret in it.
                    if isinstance(value, str) and _DSN_USERINFO.search(value):
                        out[key] = self.redact_string(value, sub)
                    else:
                        out[key] = REDACTED
                else:
                    out[key] = self.redact(value, sub)
            return out
        if isinstance(obj, list | tuple):
            return [self.redact(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, str):
            return self.redact_string(obj, path)
        return obj

    def find_in(self, data: bytes) -> str | None:
        """The config path of the first known secret present in ``data``, or None."""
        for value, path in self.secrets.items():
            if value.encode() in data:
                return path
        return None


def redact_config(config: Mapping[str, Any], finder: SecretFinder | None = None) -> dict[str, Any]:
    """Redact ``config``: the core redactor first (if present), then ours over its output."""
    finder = finder or SecretFinder()
    ours = finder.redact(config)
    try:
        from drillbook.redact import redact as core_redact  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return dict(ours)
    result = core_redact(ours)
    return dict(result) if isinstance(result, Mapping) else dict(ours)
