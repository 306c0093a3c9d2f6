"""``tls.cert`` (serve a broken certificate), the ``tls`` probe, and the ``tls.renew`` step.

The fault replaces a server's certificate and key files with an expired, not-yet-valid,
wrong-host or untrusted pair. The original bytes are copied first to a private backup
(``<state>/pressure/tls-<token>/``, mode 0600, never into the intent: a private key is a secret),
and ``state()`` holds the backup's path and the SHA-256 of both originals, so revert — from any
process — writes the exact bytes back and checks them by hash. ``reload`` optionally names a
command run after each swap (``nginx -s reload``); the sandbox's front re-reads changed files.

With ``ca_cert``/``ca_key`` (or ``dir`` holding ``ca.pem``/``ca-key.pem``) the broken
certificate is signed by the real CA, so exactly one thing is wrong with it; ``untrusted`` is
always self-signed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillbook.backends.base import Context, Fault, Probe, RecoveryStep, Selection
from drillbook.clock import get_clock, real_wall
from drillbook.durations import parse_duration
from drillbook.errors import ConfigError, FaultError, RecoveryError
from drillbook.model import ProbeResult
from drillbook.pressure.certs import KINDS, issue, write_atomic

__all__ = ["TlsCertFault", "TlsProbe", "TlsRenew", "sha256_file"]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _resolve(ctx: Context, raw: object) -> Path:
    path = Path(str(raw))
    return path if path.is_absolute() else ctx.workdir / path


def _files(ctx: Context) -> dict[str, Path | None]:
    """cert, key, ca_cert, ca_key: explicit parameters win over the ``dir`` layout."""
    folder = ctx.param("dir")
    layout = {"cert": "cert.pem", "key": "key.pem", "ca_cert": "ca.pem", "ca_key": "ca-key.pem"}
    found: dict[str, Path | None] = {}
    for name, default in layout.items():
        if ctx.param(name):
            found[name] = _resolve(ctx, ctx.param(name))
        elif folder:
            found[name] = _resolve(ctx, Path(str(folder)) / default)
        else:
            found[name] = None
    for name in ("cert", "key"):
        if found[name] is None:
            raise ConfigError("expected `dir:` or both `cert:` and `key:`", field=name)
    return found


def _ca(files: Mapping[str, Path | None]) -> tuple[bytes, bytes] | None:
    ca_cert, ca_key = files.get("ca_cert"), files.get("ca_key")
    if ca_cert and ca_key and ca_cert.exists() and ca_key.exists():
        return ca_cert.read_bytes(), ca_key.read_bytes()
    return None


def _reload(ctx: Context) -> None:
    cmd = ctx.param("reload")
    if not cmd:
        return
    argv = [str(a) for a in cmd] if isinstance(cmd, list) else ["sh", "-c", str(cmd)]
    proc = subprocess.run(argv, capture_output=True, timeout=60, cwd=ctx.workdir, check=False)
    if proc.returncode != 0:
        raise FaultError(f"reload {argv} exited {proc.returncode}: {proc.stderr[-300:]!r}")


class TlsCertFault(Fault):
    """Serve a broken certificate in place of the real one; revert restores the original bytes."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._state: dict[str, Any] = {}

    def _kind(self) -> str:
        kind = str(self.ctx.param("kind", "expired"))
        if kind not in KINDS:
            raise ConfigError(f"expected one of {', '.join(KINDS)}", field="kind")
        return kind

    def resolve(self) -> Selection:
        cert = _files(self.ctx)["cert"]
        return Selection((str(cert),), 1)

    def plan(self) -> str:
        return f"tls.cert: serve a {self._kind()} certificate from {_files(self.ctx)['cert']}"

    def _broken(self, files: Mapping[str, Path | None]) -> tuple[bytes, bytes]:
        kind = self._kind()
        host = str(self.ctx.param("host", "localhost"))
        now = real_wall()
        ca = _ca(files)
        if kind == "expired":
            return issue(
                host,
                ca=ca,
                not_before=now - dt.timedelta(days=60),
                not_after=now - dt.timedelta(days=1),
            )
        valid = {
            "not_before": now - dt.timedelta(minutes=5),
            "not_after": now + dt.timedelta(days=30),
        }
        if kind == "not_yet_valid":
            return issue(
                host,
                ca=ca,
                not_before=now + dt.timedelta(days=1),
                not_after=now + dt.timedelta(days=60),
            )
        if kind == "wrong_host":
            return issue(str(self.ctx.param("wrong_host", "wrong.invalid")), ca=ca, **valid)
        return issue(host, ca=None, **valid)  # untrusted: self-signed

    def inject(self) -> None:
        files = _files(self.ctx)
        cert, key = files["cert"], files["key"]
        assert cert is not None and key is not None
        backup = self.ctx.state_dir / "pressure" / f"tls-{os.urandom(4).hex()}"
        backup.mkdir(parents=True, mode=0o700)
        # The backup and its hashes are on disk and in state before the first byte changes.
        shutil.copy2(cert, backup / "cert.pem")
        shutil.copy2(key, backup / "key.pem")
        os.chmod(backup / "key.pem", 0o600)
        self._state = {
            "cert": str(cert),
            "key": str(key),
            "backup": str(backup),
            "cert_sha256": sha256_file(cert),
            "key_sha256": sha256_file(key),
            "cert_mode": cert.stat().st_mode & 0o777,
            "key_mode": key.stat().st_mode & 0o777,
            "kind": self._kind(),
        }
        new_cert, new_key = self._broken(files)
        write_atomic(key, new_key, self._state["key_mode"])
        write_atomic(cert, new_cert, self._state["cert_mode"])
        self._state["broken_sha256"] = hashlib.sha256(new_cert).hexdigest()
        _reload(self.ctx)

    def verify_injected(self) -> bool:
        cert = self._state.get("cert")
        return bool(cert) and sha256_file(Path(str(cert))) == self._state.get("broken_sha256")

    def revert(self) -> None:
        backup = self._state.get("backup")
        if not backup:
            return
        folder = Path(backup)
        cert, key = Path(self._state["cert"]), Path(self._state["key"])
        if folder.exists():
            write_atomic(key, (folder / "key.pem").read_bytes(), int(self._state["key_mode"]))
            write_atomic(cert, (folder / "cert.pem").read_bytes(), int(self._state["cert_mode"]))
            if not self._restored():
                raise FaultError(f"tls.cert revert: {cert} does not hash to the original")
            shutil.rmtree(folder)
            _reload(self.ctx)
        elif not self._restored():
            raise FaultError(
                f"tls.cert revert: the backup {folder} is gone and {cert} is not the original"
            )

    def _restored(self) -> bool:
        try:
            cert_ok = sha256_file(Path(self._state["cert"])) == self._state["cert_sha256"]
            key_ok = sha256_file(Path(self._state["key"])) == self._state["key_sha256"]
        except OSError:
            return False
        return bool(cert_ok and key_ok)

    def verify_reverted(self) -> bool:
        if not self._state.get("backup"):
            return True
        return self._restored() and not Path(self._state["backup"]).exists()

    def state(self) -> Mapping[str, Any]:
        return dict(self._state)

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)


def _port(ctx: Context) -> int:
    if ctx.param("port"):
        return int(ctx.param("port"))
    from drillbook.backends.local.service import LocalService

    port = LocalService(ctx.target(), ctx.state_dir, ctx.workdir).port
    if port is None:
        raise ConfigError("expected `port:` or a local target with a known port", field="port")
    return port


class TlsProbe(Probe):
    """The chain verifies for the expected host and has at least ``min_days`` left.

    Its value is the days left on the served certificate (negative when expired), read from the
    certificate itself even when verification fails, so a report draws it falling."""

    def check(self) -> ProbeResult:
        start = get_clock().monotonic()
        host = str(self.ctx.param("host", "127.0.0.1"))
        server_name = str(self.ctx.param("server_name", "localhost"))
        timeout = parse_duration(self.ctx.param("timeout", 2.0), allow_zero=False)
        port = _port(self.ctx)
        ca = self.ctx.param("ca_file")
        ctx = ssl.create_default_context(cafile=str(_resolve(self.ctx, ca)) if ca else None)
        days = _days_left(host, port, server_name, timeout)
        try:
            with (
                socket.create_connection((host, port), timeout=timeout) as raw,
                ctx.wrap_socket(raw, server_hostname=server_name),
            ):
                pass
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            reason = getattr(exc, "verify_message", None) or str(exc)
            return ProbeResult(False, get_clock().monotonic() - start, f"{reason}", value=days)
        min_days = float(self.ctx.param("min_days", 0))
        if days is None or days < min_days:
            return ProbeResult(
                False, get_clock().monotonic() - start, f"{days} days left < {min_days}", value=days
            )
        return ProbeResult(
            True, get_clock().monotonic() - start, f"{days:.1f} days left", value=days
        )


def _days_left(host: str, port: int, server_name: str, timeout: float) -> float | None:
    """Days until the served certificate's notAfter, read without verifying it."""
    from cryptography import x509

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    if not der:
        return None
    after = x509.load_der_x509_certificate(der).not_valid_after_utc
    left = (after - real_wall()).total_seconds() / 86400
    return round(left, 3)


class TlsRenew(RecoveryStep):
    """Issue a fresh certificate from the CA and install it (the runbook's renew step)."""

    def run(self) -> str:
        files = _files(self.ctx)
        ca = _ca(files)
        if ca is None:
            raise RecoveryError("tls.renew needs the CA: `ca_cert` and `ca_key`, or `dir`")
        days = int(self.ctx.param("days", 30))
        now = real_wall()
        cert, key = issue(
            str(self.ctx.param("host", "localhost")),
            ca=ca,
            not_before=now - dt.timedelta(minutes=5),
            not_after=now + dt.timedelta(days=days),
        )
        assert files["cert"] is not None and files["key"] is not None
        write_atomic(files["key"], key)
        write_atomic(files["cert"], cert, 0o644)
        _reload(self.ctx)
        return f"renewed {files['cert']} for {days} days"
