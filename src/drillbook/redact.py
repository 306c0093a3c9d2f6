"""Secrets never reach a report, a journal or a log.

Redaction is applied where data leaves the process (journal writer, reports, evidence), not where
it is produced, so a new backend cannot forget it. It removes passwords from URLs/DSNs, values of
secret-looking keys, bearer tokens and AWS-style keys, plus any value registered at run time with
:func:`register_secret` (e.g. a password read from a target's config).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

__all__ = [
    "REDACTED",
    "is_secret_key",
    "redact",
    "redact_text",
    "register_secret",
    "secrets_generation",
]

REDACTED = "***"
_SECRET_KEY = re.compile(
    # ``pass`` and ``auth`` only as a whole part of the name: ``db_pass`` and ``auth`` are
    # secret, ``passes``, ``bypass``, ``author`` and ``authenticated`` are not (a harmless
    # value hidden by name is a fault state rollback could no longer use).
    r"(pass(word|wd|phrase)|(^|[_.-])pass($|[_.-])|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|credential|(^|[_.-])auth($|[_.-])|authorization|session[_-]?key"
    r"|signing[_-]?key|dsn|connection[_-]?string|[_.-]key$)",
    re.IGNORECASE,
)
#: The words that make a name secret in free text. A name is a whole identifier that contains one
#: (``PGPASSWORD``, ``DB_PASSWORD``, ``AWS_SECRET_ACCESS_KEY``, ``GITHUB_TOKEN``, ``api-key``) or
#: ends in ``_KEY``/``-key``: ``\b`` cannot find these, since ``_`` is a word character.
_SECRET_WORD = (
    r"(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|credentials?|signing[_-]?key|session[_-]?key)"
)
_NAME = rf"[A-Za-z0-9_.-]*{_SECRET_WORD}[A-Za-z0-9_.-]*|[A-Za-z0-9.-]*[A-Za-z0-9][_-]key"
_URL_CREDS = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s/]+)@", re.I
)
#: ``NAME=value``, ``NAME: value``, ``"NAME": "value"`` (JSON, YAML, env files, query strings,
#: libpq keyword DSNs). A quoted value runs to its closing quote, spaces and all.
_KV_SECRET = re.compile(
    rf"(?P<key>(?<![A-Za-z0-9_.-])(?P<kq>['\"]?)(?:{_NAME})(?P=kq)\s*[=:]\s*)"
    r"(?:(?P<q>['\"])(?P<qval>(?:\\.|(?!(?P=q)).)*)(?P=q)|(?P<val>[^\s'\"&;,}\]]+))",
    re.IGNORECASE,
)
#: ``--password x``, ``--db-password=x``, ``--token x`` on a command line.
_FLAG_SECRET = re.compile(
    rf"(?P<flag>(?<![A-Za-z0-9_-])--?(?:{_NAME})(?:=|\s+))(?P<val>['\"][^'\"]*['\"]|[^\s'\"-][^\s]*)",
    re.IGNORECASE,
)
_HINT = re.compile(r"pass|pwd|secret|token|key|credential", re.IGNORECASE)
_BEARER = re.compile(r"(?P<p>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_AWS_KEY = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)

_lock = threading.Lock()
_known: set[str] = set()


# Probe samples repeat the same few details ("HTTP 200", "connection refused") thousands of
# times a second at scale; remembering short answers keeps redaction off the probe loop's budget.
# Cleared whenever a secret is registered, so a remembered answer never predates a secret.
_memo: dict[str, str] = {}
_MEMO_MAX_ENTRIES = 4096
_MEMO_MAX_LEN = 512
_secret_keys: dict[str, bool] = {}


def register_secret(value: str | None) -> None:
    """Remember a secret value so it is scrubbed wherever it appears verbatim."""
    if value and len(value) >= 4:
        with _lock:
            if value not in _known:  # config is loaded more than once a run: keep the memo
                _known.add(value)
                _memo.clear()


def secrets_generation() -> int:
    """Changes whenever a secret is registered: callers that remember redacted text compare it."""
    return len(_known)


def is_secret_key(key: str) -> bool:
    hit = _secret_keys.get(key)
    if hit is None:
        hit = bool(_SECRET_KEY.search(key))
        if len(_secret_keys) < _MEMO_MAX_ENTRIES:
            _secret_keys[key] = hit
    return hit


def redact_text(text: str) -> str:
    """Scrub secrets from free text (a DSN in an error message, a token in a command line)."""
    if not text:
        return text
    if len(text) > _MEMO_MAX_LEN:
        return _scrub(text)
    hit = _memo.get(text)
    if hit is None:
        with _lock:
            generation = len(_known)
        hit = _scrub(text)
        with _lock:
            if len(_known) == generation:  # no secret registered meanwhile
                if len(_memo) >= _MEMO_MAX_ENTRIES:
                    _memo.clear()
                _memo[text] = hit
    return hit


def _scrub(text: str) -> str:
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
        text = _cut_edges(text, secret)
    text = _PEM.sub(REDACTED, text)
    text = _URL_CREDS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    if _HINT.search(text):  # the name patterns are costly; most probe details name no secret
        text = _KV_SECRET.sub(_kv, text)
        text = _FLAG_SECRET.sub(lambda m: f"{m['flag']}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m['p']}{REDACTED}", text)
    return _AWS_KEY.sub(REDACTED, text)


def _kv(m: re.Match[str]) -> str:
    if m["q"]:
        return f"{m['key']}{m['q']}{REDACTED}{m['q']}"
    return f"{m['key']}{REDACTED}"


def _hide(value: Any) -> Any:
    """Everything under a secret key: lists, numbers and nested maps keep their shape only."""
    if isinstance(value, Mapping):
        return {k: _hide(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hide(v) for v in value]
    if value is None or isinstance(value, bool) or value == "":
        return value
    return REDACTED


def _cut_edges(text: str, secret: str) -> str:
    """A text cut to a length before it got here may end with a secret's head or start with its
    tail: scrub those too (6 characters or more)."""
    for k in range(min(len(secret) - 1, len(text)), 5, -1):
        if text.endswith(secret[:k]):
            return text[:-k] + REDACTED
    for k in range(min(len(secret) - 1, len(text)), 5, -1):
        if text.startswith(secret[-k:]):
            return REDACTED + text[k:]
    return text


def redact(value: Any, *, key: str | None = None) -> Any:
    """A deep copy of ``value`` with secrets removed; mapping keys that look secret lose their value.

    A key like ``dsn`` keeps its value with only the password removed, so reports still say which
    database was drilled.
    """
    secret = key is not None and is_secret_key(key)
    if isinstance(value, str):
        if secret:
            assert key is not None
            lowered = key.lower()
            if ("dsn" in lowered or "connection" in lowered or "url" in lowered) and "://" in value:
                return redact_text(value)
            return REDACTED if value else value
        return redact_text(value)
    if secret:
        return _hide(value)
    if isinstance(value, Mapping):
        return {k: redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
