"""Redaction by shape and by value: every shape the review found unredacted, and registration of
the secrets drillbook reads (config, scenario, environment, kubeconfig)."""

from __future__ import annotations

import secrets

import pytest

from drillbook.redact import REDACTED, redact, redact_text
from drillbook.secretsources import (
    register_config_secrets,
    register_environ_secrets,
    register_kubeconfig_secrets,
)


def _v() -> str:
    return "Zq" + secrets.token_hex(6)


@pytest.mark.parametrize(
    "template",
    [
        "PGPASSWORD={v} psql -h db",
        "export DB_PASSWORD={v}",
        "AWS_SECRET_ACCESS_KEY={v}",
        "AWS_SESSION_TOKEN: {v}",
        "GITHUB_TOKEN='{v} with spaces'",
        'STRIPE_KEY="{v}"',
        '{{"password": "{v} x", "user": "app"}}',
        "{{'api_key': '{v}'}}",
        "mysql --password {v} -u app",
        "tool --db-password={v}",
        "host=db user=app password={v} dbname=x",
        "https://example.test/cb?token={v}&x=1",
        "postgresql://app:{v}@db:5432/app",
        "Authorization: Bearer {v}",
    ],
)
def test_secret_shapes_are_scrubbed(template: str) -> None:
    value = _v()
    out = redact_text(template.format(v=value))
    assert value not in out and REDACTED in out, out


@pytest.mark.parametrize(
    "text", ["HTTP 200", "connection refused", "the password was wrong", "monkey=banana"]
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_values_under_secret_keys_keep_only_their_shape() -> None:
    out = redact(
        {
            "password": 123456789,
            "tokens": ["a1b2c3d4", "e5f6g7h8"],
            "credentials": {"user": "app", "pin": 4321, "extra": {"value": "deep-secret"}},
            "require_auth": True,
            "dsn": "postgresql://app:pw12345@db/app",
            "name": "demo",
        }
    )
    assert out == {
        "password": REDACTED,
        "tokens": [REDACTED, REDACTED],
        "credentials": {"user": REDACTED, "pin": REDACTED, "extra": {"value": REDACTED}},
        "require_auth": True,
        "dsn": f"postgresql://app:{REDACTED}@db/app",
        "name": "demo",
    }


def test_config_secrets_are_scrubbed_wherever_they_appear_bare() -> None:
    token, number, nested, dsn_pw, libpq_pw = _v(), "90817263541", _v(), _v(), _v()
    register_config_secrets(
        {
            "targets": {
                "db": {
                    "dsn": f"postgresql://app:{dsn_pw}@db/app",
                    "token": token,
                    "credentials": {"pin": int(number), "more": [{"x": nested}]},
                    "conn": f"host=db password={libpq_pw}",
                }
            }
        }
    )
    text = f"echo {token} {number} {nested} {dsn_pw} {libpq_pw}"
    assert redact_text(text) == "echo " + " ".join([REDACTED] * 5)


def test_environment_secrets_are_registered_by_name() -> None:
    values = {n: _v() for n in ("PGPASSWORD", "DB_PASSWORD", "SERVICE_TOKEN", "STRIPE_KEY")}
    values["AWS_SECRET_ACCESS_KEY"] = _v()
    plain = _v()
    register_environ_secrets({**values, "HOSTNAME": plain})
    out = redact_text(" ".join([*values.values(), plain]))
    assert out == " ".join([REDACTED] * len(values) + [plain])


def test_short_lowercase_words_are_not_registered() -> None:
    """A sandbox default like ``postgres`` would otherwise vanish from every fault name."""
    register_environ_secrets({"PGPASSWORD": "postgres"})
    assert redact_text("postgres.destroy_data") == "postgres.destroy_data"


def test_kubeconfig_credentials_are_registered() -> None:
    token, key, refresh = _v(), _v(), _v()
    register_kubeconfig_secrets(
        {
            "users": [
                {"name": "a", "user": {"token": token}},
                {"name": "b", "user": {"client-key-data": key}},
                {"name": "c", "user": {"auth-provider": {"config": {"refresh-token": refresh}}}},
            ]
        }
    )
    assert redact_text(f"{token} {key} {refresh}") == f"{REDACTED} {REDACTED} {REDACTED}"


def test_a_cut_text_loses_the_secret_at_its_edge() -> None:
    """Output cut to a length before redaction may end mid-secret."""
    value = _v()
    register_environ_secrets({"DB_PASSWORD": value})
    assert redact_text("login failed for " + value[:7]) == f"login failed for {REDACTED}"
