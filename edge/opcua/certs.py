"""The OPC UA server's application instance certificate and key.

Owns `ensure_certificate(directory, ...) -> ServerCertificate`: the certificate (`server_cert.der`,
DER, mode 0644) and its RSA 2048 key (`server_key.pem`, PEM, mode 0600) in `directory` (made 0700
when missing), self-signed, valid `CERT_DAYS` days, with the application URI
(`urn:discharge-edge:HOSTNAME`) and the host's name, `localhost` and 127.0.0.1 as subject
alternative names (OPC 10000-6 6.2.2). An existing pair is kept as it is (SCADA clients trust it
by its thumbprint): it is checked (the key matches the certificate, the key file is the running
user's and unreadable by group or others) and the days left are reported; `renew=True` makes a new
pair. `discharge-edge opcua cert --dir D` (edge/opcua/cli.py) calls it at install; the server
calls it at start on its certificate directory (default `<state dir>/opcua`).
Tests: tests/edge/opcua/test_certs.py.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

CERT_FILE = "server_cert.der"
KEY_FILE = "server_key.pem"
CERT_DAYS = 3650  # ten years: a plant's SCADA trusts the certificate once; renewing is an operator's act
KEY_BITS = 2048  # Basic256Sha256 allows 2048..4096


class CertificateError(ValueError):
    """The certificate directory cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ServerCertificate:
    cert_path: Path
    key_path: Path
    application_uri: str  # the URI in the certificate: the server's ApplicationUri must equal it
    not_after: dt.datetime
    thumbprint_sha1: str  # hex, what OPC UA clients show to trust
    created: bool  # made now (False: an existing pair kept)

    @property
    def days_left(self) -> float:
        return (self.not_after - dt.datetime.now(dt.timezone.utc)).total_seconds() / 86400.0

    def to_dict(self) -> dict:
        return {"cert_path": str(self.cert_path), "key_path": str(self.key_path),
                "application_uri": self.application_uri, "not_after": self.not_after.isoformat(),
                "days_left": round(self.days_left, 1), "thumbprint_sha1": self.thumbprint_sha1,
                "created": self.created}


def application_uri_for(hostname: str | None = None) -> str:
    return f"urn:discharge-edge:{hostname or socket.gethostname()}"


def _check_private(path: Path) -> None:
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.geteuid() or mode & 0o077:
        raise CertificateError(f"refusing {path}: owner uid {st.st_uid}, mode {mode:04o}; the server's key must be the "
                               f"supervisor's (uid {os.geteuid()}) and unreadable by group or others (chmod 600)")


def _load(cert_path: Path, key_path: Path, created: bool) -> ServerCertificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    try:
        cert = x509.load_der_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertificateError(f"{cert_path}: not a DER certificate: {exc}") from None
    _check_private(key_path)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(f"{key_path}: not an unencrypted PEM private key: {exc}") from None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, pub) != cert.public_key().public_bytes(enc, pub):
        raise CertificateError(f"{key_path}: this key does not belong to {cert_path} (make a new pair with "
                               "`discharge-edge opcua cert --dir DIR --renew`)")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if not uris:
        raise CertificateError(f"{cert_path}: no application URI in its subject alternative names (OPC UA needs one)")
    return ServerCertificate(cert_path, key_path, uris[0], cert.not_valid_after_utc,
                             cert.fingerprint(hashes.SHA1()).hex(), created)  # noqa: S303 (OPC UA's thumbprint)


def ensure_certificate(directory: Path | str, *, hostname: str | None = None, days: int = CERT_DAYS,
                       renew: bool = False) -> ServerCertificate:
    """The server's certificate and key in `directory`: kept when both are there (checked), made
    when both are missing (or `renew`); one without the other is refused (CertificateError)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from asyncua.crypto.cert_gen import generate_self_signed_app_certificate

    directory = Path(directory)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if not renew:
        have = cert_path.exists(), key_path.exists()
        if all(have):
            return _load(cert_path, key_path, created=False)
        if any(have):
            there, missing = (cert_path, key_path) if have[0] else (key_path, cert_path)
            raise CertificateError(f"{there} is there but {missing} is missing; make a new pair with "
                                   f"`discharge-edge opcua cert --dir {directory} --renew`")
    if not 1 <= days <= 36500:
        raise CertificateError(f"certificate days: is {days}; allowed: 1..36500")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    host = hostname or socket.gethostname()
    uri = application_uri_for(host)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    names = [x509.UniformResourceIdentifier(uri), x509.DNSName(host)]
    if host != "localhost":
        names.append(x509.DNSName("localhost"))
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = generate_self_signed_app_certificate(key, f"discharge-edge OPC UA server@{host}",
                                                {"organizationName": "discharge-edge"}, names,
                                                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                                                days=days)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    # the key first, written whole under a temporary name and renamed: never a readable or half key
    tmp_key = key_path.with_suffix(".pem.tmp")
    tmp_key.unlink(missing_ok=True)
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
        f.flush()
        os.fsync(f.fileno())
    tmp_cert = cert_path.with_suffix(".der.tmp")
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    os.chmod(tmp_cert, 0o644)
    os.replace(tmp_key, key_path)
    os.replace(tmp_cert, cert_path)
    return _load(cert_path, key_path, created=True)
