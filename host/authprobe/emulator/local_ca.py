"""The stand-in's own CA and the server certificate for the endpoint and domain names.

The CA is kept in the state directory and reused across runs (devices that were told to trust it
keep working); the server certificate is reissued whenever the names change. ATS endpoints chain to
an RSA 2048 root (Amazon Root CA 1), so the stand-in uses RSA 2048 too."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "authprobe local stand-in CA"


@dataclass
class LocalCA:
    ca_pem: Path
    ca_der: Path
    server_cert: Path
    server_key: Path


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_or_create_ca(directory: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert_path, key_path = directory / "ca.pem", directory / "private" / "ca.key"
    if cert_path.exists() and key_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            if isinstance(key, rsa.RSAPrivateKey) and cert.not_valid_after_utc > _now() + dt.timedelta(days=1):
                return cert, key
        except ValueError:
            pass  # damaged: make a new one
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "authprobe")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(days=1)).not_valid_after(_now() + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    (directory / "private").mkdir(parents=True, exist_ok=True)
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _san(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def ensure_local_ca(state_dir: Path, server_names: list[str]) -> LocalCA:
    """CA (created once) and a server certificate naming exactly `server_names`."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _load_or_create_ca(state_dir)
    ca_der = state_dir / "ca.der"
    ca_der.write_bytes(ca_cert.public_bytes(serialization.Encoding.DER))
    cert_path, key_path = state_dir / "private" / "server.pem", state_dir / "private" / "server.key"
    wanted = sorted(set(server_names))
    if cert_path.exists() and key_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have = sorted(str(v) for v in san.get_values_for_type(x509.DNSName)) + sorted(
                str(v) for v in san.get_values_for_type(x509.IPAddress))
            if (sorted(have) == wanted and cert.issuer == ca_cert.subject
                    and cert.not_valid_after_utc > _now() + dt.timedelta(days=1)):
                return LocalCA(state_dir / "ca.pem", ca_der, cert_path, key_path)
        except (ValueError, x509.ExtensionNotFound):
            pass
    key = _new_key()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0][:64])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(days=1)).not_valid_after(_now() + dt.timedelta(days=397))
            .add_extension(x509.SubjectAlternativeName(_san(wanted)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                          + ca_cert.public_bytes(serialization.Encoding.PEM))
    return LocalCA(state_dir / "ca.pem", ca_der, cert_path, key_path)
