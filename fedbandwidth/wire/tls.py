"""Throw-away TLS material for a local deployment: a CA and a server certificate it signs.

The server certificate names 127.0.0.1, localhost and, on an emulated network, the addresses the SuperNodes
reach the SuperLink at (subject alternative names), so SuperNodes and the `flwr` CLI verify the SuperLink
against the CA file alone. Keys never leave `folder`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ..checks import ConfigError

VALID_DAYS = 2  # the certificates are made for one run; they need not live long


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files a TLS deployment needs."""

    ca_cert: Path  # CA certificate: SuperNodes and the CLI trust it (--root-certificates)
    server_cert: Path  # SuperLink certificate, signed by the CA (--ssl-certfile)
    server_key: Path  # SuperLink private key (--ssl-keyfile)


def _name(common_name: str):
    """An X.509 name with just a common name."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, issuer: str, public_key, signing_key, is_ca: bool, addresses=()):
    """A certificate builder with validity, basic constraints and, for the server, its SANs."""
    from cryptography import x509

    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if not is_ca:
        ips = ["127.0.0.1", *addresses]
        sans = [*(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips), x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder


def write_pem(path: Path, data: bytes, private: bool = False) -> Path:
    """Write PEM bytes to `path` (mode 0600 for a private key)."""
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return path


def generate_tls(folder: Path, addresses=()) -> TlsFiles:
    """Create a CA and a CA-signed certificate for 127.0.0.1/localhost (and `addresses`) in `folder`."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(
        "fedbandwidth throw-away CA", "fedbandwidth throw-away CA", ca_key.public_key(), ca_key, is_ca=True
    ).sign(ca_key, hashes.SHA256())
    server = _certificate(
        "127.0.0.1", "fedbandwidth throw-away CA", server_key.public_key(), ca_key, is_ca=False, addresses=addresses
    ).sign(ca_key, hashes.SHA256())
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return TlsFiles(
        ca_cert=write_pem(folder / "ca.crt", ca.public_bytes(serialization.Encoding.PEM)),
        server_cert=write_pem(folder / "server.pem", server.public_bytes(serialization.Encoding.PEM)),
        server_key=write_pem(folder / "server.key", key_pem, private=True),
    )


def check_tls_files(files: TlsFiles) -> TlsFiles:
    """Check each PEM file can be read and parsed; raise ConfigError naming the first bad one."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    loaders = {
        "ca_cert": x509.load_pem_x509_certificate,
        "server_cert": x509.load_pem_x509_certificate,
        "server_key": lambda data: load_pem_private_key(data, password=None),
    }
    for field, load in loaders.items():
        path = getattr(files, field)
        try:
            load(path.read_bytes())
        except OSError as err:
            raise ConfigError(f"--certs: cannot read {path}: {err.strerror or err}") from None
        except (ValueError, TypeError) as err:
            raise ConfigError(f"--certs: {path} is not a valid PEM {field.replace('_', ' ')}: {err}") from None
    return files


def tls_files_in(folder: Path) -> TlsFiles:
    """The TlsFiles layout generate_tls writes: ca.crt, server.pem, server.key in `folder`."""
    return TlsFiles(folder / "ca.crt", folder / "server.pem", folder / "server.key")
