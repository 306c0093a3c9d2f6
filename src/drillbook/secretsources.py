"""Register every secret drillbook reads, so :mod:`drillbook.redact` scrubs it by value.

The patterns in :mod:`drillbook.redact` catch a secret by its shape (``password=…``, a DSN's
userinfo, a bearer token). A secret printed bare — a recovery command that echoes
``$PGPASSWORD``, an exception that quotes a token — has no shape, so the values themselves are
registered where drillbook reads them: drillbook.yaml (values under secret-looking keys, DSN and
URL passwords), the environment variables it passes on to probes, steps and backends
(``*PASSWORD*``, ``*_TOKEN*``, ``*SECRET*``, ``*_KEY``, the AWS credentials), the AWS shared
credentials file, and the kubeconfig a kubernetes target uses (tokens, passwords, client keys).

A value that is a short lowercase word (``postgres``, ``testing``) is not registered: scrubbing it
by value would erase that word from every report (a fault named ``postgres.stop``), and such a
value is a sandbox default, not a secret. The shape patterns still catch it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from drillbook.redact import is_secret_key, register_secret

__all__ = [
    "is_secret_env_name",
    "register_aws_shared_credentials",
    "register_config_secrets",
    "register_environ_secrets",
    "register_kubeconfig_secrets",
    "register_process_secrets",
    "register_value",
]

_ENV_NAME = re.compile(
    r"(PASSWORD|PASSWD|_PWD$|TOKEN|SECRET|_KEY$|^AWS_ACCESS_KEY_ID$)", re.IGNORECASE
)
_PLAIN_WORD = re.compile(r"[a-z]{1,12}")
_LIBPQ_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*(?:'((?:\\.|[^'])*)'|(\S+))", re.IGNORECASE)
#: kubeconfig ``user`` fields that hold a credential.
_KUBE_SECRET_FIELDS = ("token", "password", "client-key-data", "id-token", "refresh-token")


def is_secret_env_name(name: str) -> bool:
    """Whether an environment variable's value is a secret by its name (``DB_PASSWORD``)."""
    return bool(_ENV_NAME.search(name))


def register_value(value: Any) -> None:
    """Register one secret value (numbers too: a PIN read from YAML is an int)."""
    if value is None or isinstance(value, bool):
        return
    text = str(value).strip()
    if len(text) < 4 or _PLAIN_WORD.fullmatch(text):
        return
    register_secret(text)
    unquoted = unquote(text)
    if unquoted != text:
        register_secret(unquoted)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _dsn_password(text: str) -> str | None:
    """The password in a URL (``scheme://user:pw@host``) or a libpq keyword DSN."""
    if "://" in text:
        try:
            pw = urlsplit(text.strip()).password
        except ValueError:
            pw = None
        if pw:
            return pw
    m = _LIBPQ_PASSWORD.search(text)
    if m:
        return m.group(1) if m.group(1) is not None else m.group(2)
    return None


def register_config_secrets(raw: Any, *, key: str | None = None) -> None:
    """Walk a parsed drillbook.yaml (or any mapping): every value under a secret-looking key, and
    the password inside every DSN or URL, is registered."""
    if key is not None and is_secret_key(key):
        for leaf in _leaves(raw):
            if isinstance(leaf, str):
                pw = _dsn_password(leaf)
                if pw:
                    register_value(pw)
                    if "://" in leaf or "password" in leaf.lower():
                        continue  # a DSN: the rest of it (host, user) is not secret
            register_value(leaf)
        return
    if isinstance(raw, Mapping):
        for k, v in raw.items():
            register_config_secrets(v, key=str(k))
    elif isinstance(raw, list | tuple):
        for v in raw:
            register_config_secrets(v)
    elif isinstance(raw, str):
        pw = _dsn_password(raw)
        if pw:
            register_value(pw)


def register_environ_secrets(environ: Mapping[str, str]) -> None:
    """Register the values of secret-named variables, and passwords in DSN-like values."""
    for name, value in environ.items():
        if is_secret_env_name(name):
            register_value(value)
        elif "://" in value or "password" in value.lower():
            pw = _dsn_password(value)
            if pw:
                register_value(pw)


def register_aws_shared_credentials(environ: Mapping[str, str]) -> None:
    """Register the secret keys and session tokens in the AWS shared credentials file."""
    import configparser

    path = Path(
        environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials"
    ).expanduser()
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        return
    for section in parser.sections():
        for option, value in parser.items(section):
            if "secret" in option or "token" in option:
                register_value(value)


def register_kubeconfig_secrets(doc: Any) -> None:
    """Register the credentials in a parsed kubeconfig (every user, not only the current one:
    an error message may name any of them)."""
    if not isinstance(doc, Mapping):
        return
    for user in doc.get("users") or []:
        body = (user or {}).get("user") if isinstance(user, Mapping) else None
        if not isinstance(body, Mapping):
            continue
        for field in _KUBE_SECRET_FIELDS:
            register_value(body.get(field))
        provider = body.get("auth-provider")
        if isinstance(provider, Mapping):
            register_config_secrets(provider.get("config") or {}, key="credentials")
        exec_spec = body.get("exec")
        if isinstance(exec_spec, Mapping):
            for item in exec_spec.get("env") or []:
                if isinstance(item, Mapping) and is_secret_env_name(str(item.get("name", ""))):
                    register_value(item.get("value"))


def register_process_secrets(raw: Any, environ: Mapping[str, str] | None = None) -> None:
    """Everything a run reads at start: the config file's secrets, the environment's, and the
    AWS shared credentials file (read only when the config names the aws backend)."""
    env = os.environ if environ is None else environ
    register_config_secrets(raw)
    register_environ_secrets(env)
    if _uses_aws(raw):
        register_aws_shared_credentials(env)


def _uses_aws(raw: Any) -> bool:
    if not isinstance(raw, Mapping):
        return False
    backends = raw.get("backends")
    if isinstance(backends, Mapping) and "aws" in backends:
        return True
    targets = raw.get("targets")
    return isinstance(targets, Mapping) and any(
        isinstance(t, Mapping) and t.get("backend") == "aws" for t in targets.values()
    )
