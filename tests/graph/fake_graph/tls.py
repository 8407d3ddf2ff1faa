"""Throwaway key material for the fake: a CA, a server certificate, a signing key, a client cert.

msal refuses authorities that are not https, so the fake serves TLS with a certificate for
127.0.0.1/localhost signed by a CA made here; the client trusts it through ``ca_bundle``. The keys
are made once per process (RSA key generation costs tens of milliseconds) and written to each
test's own directory; nothing here is a secret worth protecting.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class KeyMaterial:
    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    token_signing_key: rsa.RSAPrivateKey  # signs the access and ID tokens the fake issues
    client_cert_pem: bytes  # the confidential app's registered certificate (credential)
    client_key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@functools.cache
def key_material() -> KeyMaterial:
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("oathdesk fake Graph test CA"))
        .issuer_name(_name("oathdesk fake Graph test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("oathdesk test app credential"))
        .issuer_name(_name("oathdesk test app credential"))
        .public_key(client_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(client_key, hashes.SHA256())
    )

    return KeyMaterial(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        server_cert_pem=server_cert.public_bytes(serialization.Encoding.PEM),
        server_key_pem=_pem_key(server_key),
        token_signing_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        client_cert_pem=client_cert.public_bytes(serialization.Encoding.PEM),
        client_key_pem=_pem_key(client_key),
    )


@dataclass(frozen=True)
class TlsFiles:
    ca_bundle: Path
    server_cert: Path
    server_key: Path
    client_cert: Path  # PEM certificate only
    client_key: Path  # PEM private key only


def write_tls_files(directory: Path) -> TlsFiles:
    """Write the PEM files a test needs into ``directory`` (the test's tmp dir)."""
    material = key_material()
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca_bundle=directory / "fake-graph-ca.pem",
        server_cert=directory / "fake-graph-server.pem",
        server_key=directory / "fake-graph-server.key",
        client_cert=directory / "app-credential.pem",
        client_key=directory / "app-credential.key",
    )
    files.ca_bundle.write_bytes(material.ca_pem)
    files.server_cert.write_bytes(material.server_cert_pem)
    files.server_key.write_bytes(material.server_key_pem)
    files.client_cert.write_bytes(material.client_cert_pem)
    files.client_key.write_bytes(material.client_key_pem)
    for key_file in (files.server_key, files.client_key):
        key_file.chmod(0o600)
    return files


def certificate_thumbprints(cert_pem: bytes) -> tuple[str, str]:
    """(SHA-1 hex, SHA-256 hex) of a certificate, as Entra shows and JWT x5t headers carry."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA1()).hex(), cert.fingerprint(hashes.SHA256()).hex()  # noqa: S303
