"""Certificates for the TLS faults, made with ``cryptography``: a CA, leaves signed by it, and
the deliberately broken ones (expired, not yet valid, wrong host, untrusted)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING

from drillbook.clock import real_wall

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

__all__ = ["KINDS", "issue", "make_ca", "write_atomic"]

#: What ``tls.cert`` can serve instead of the real certificate.
KINDS = ("expired", "not_yet_valid", "wrong_host", "untrusted")


def _key() -> EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(days: int = 3650, name: str = "drillbook sandbox CA") -> tuple[bytes, bytes]:
    """A self-signed CA: (certificate PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    key = _key()
    now = real_wall()
    subject = _name(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def issue(
    host: str,
    *,
    ca: tuple[bytes, bytes] | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> tuple[bytes, bytes]:
    """A server certificate for ``host`` (a name or an IP), signed by ``ca`` (PEMs) or, with no
    CA, by its own key (untrusted). Returns (certificate PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    key = _key()
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    if ca is not None:
        ca_cert = x509.load_pem_x509_certificate(ca[0])
        from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

        ca_key = serialization.load_pem_private_key(ca[1], password=None)
        if not isinstance(ca_key, EllipticCurvePrivateKey | RSAPrivateKey):
            raise ValueError(f"the CA key is a {type(ca_key).__name__}; expected EC or RSA")
        issuer, signer = ca_cert.subject, ca_key
    else:
        issuer, signer = _name(host), key
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` in one rename: a server reading it never sees half a certificate."""
    import os

    tmp = path.with_name(f".{path.name}.drillbook-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
