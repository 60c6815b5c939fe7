"""The federation's own certificate authority and mutual TLS between its members.

``jjj certs init DIR`` makes the CA and a certificate for each node and the gateway;
``jjj certs issue`` adds or renews one. Keys are ECDSA P-256 (what every TLS stack
accepts), certificates carry the member's identity as their common name — ``node:tianjin``,
``gateway:jjj-gateway`` — and SANs for its host names and loopback. gRPC servers then
demand a client certificate from the CA (a caller without one, with one from another CA,
or with an expired one fails the handshake), and handlers authorise callers by the
identity in their certificate.

The same CA issues each gateway instance's document-signing certificate (``seal.pem``,
``jjj certs issue DIR seal --organisation NAME``): the issuing organisation's name as its
subject, key usage digitalSignature and nonRepudiation, extended key usage
documentSigning (RFC 9336) and no TLS use. Printed reports are signed with it (PAdES), and
a verifier accepts a PDF signature only from such a certificate under the CA.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from credit.errors import FailedPrecondition, InvalidInput
from credit.regions import Region

CA_DAYS = 3650
LEAF_DAYS = 365
ORGANISATION = "JJJ Credit Federation"
SEAL = "seal"
# id-kp-documentSigning (RFC 9336): what a verifier demands of a printed report's signer.
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# Adobe Authentic Documents Trust: Adobe Acrobat accepts a signing certificate whose
# extended key usage names it (it does not know RFC 9336 by name).
ADOBE_DOCUMENT_SIGNING = ObjectIdentifier("1.2.840.113583.1.1.5")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: str
    key: str
    ca: str

    @classmethod
    def of(cls, cert: str, key: str, ca: str) -> TlsFiles | None:
        """The three files as settings give them, or None when none is given (plain gRPC).

        Raises:
            InvalidInput: some but not all of the three are given.
        """
        if not (cert or key or ca):
            return None
        if not (cert and key and ca):
            raise InvalidInput.for_field("tls_cert", "mTLS needs all three: tls_cert, tls_key and tls_ca")
        return cls(cert, key, ca)

    def read(self) -> tuple[bytes, bytes, bytes]:
        """The PEM bytes of the certificate, key and CA.

        Raises:
            FailedPrecondition: a file cannot be read.
        """
        try:
            return Path(self.cert).read_bytes(), Path(self.key).read_bytes(), Path(self.ca).read_bytes()
        except OSError as exc:
            raise FailedPrecondition(f"cannot read TLS files: {exc}") from exc


def node_identity(region: Region) -> str:
    return f"node:{region.value}"


def gateway_identity(name: str) -> str:
    return f"gateway:{name}"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _load_ca(directory: Path) -> tuple[x509.Certificate, Any]:
    try:
        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise FailedPrecondition(f"no usable CA in {directory} (run `jjj certs init {directory}`): {exc}") from exc
    return cert, key


def init_ca(directory: Path, *, days: int = CA_DAYS, now: datetime | None = None) -> x509.Certificate:
    """Create the federation's CA in ``directory`` (``ca.pem``, ``ca.key``).

    Raises:
        FailedPrecondition: a CA already exists there (it is never overwritten).
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (directory / "ca.key").exists():
        raise FailedPrecondition(f"{directory} already holds a CA; certificates are issued with `jjj certs issue`")
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("JJJ Credit Federation CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(directory / "ca.key", key)
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert


def issue(
    directory: Path,
    name: str,
    identity: str,
    *,
    hosts: Sequence[str] = (),
    days: int = LEAF_DAYS,
    now: datetime | None = None,
) -> x509.Certificate:
    """Issue (or renew) ``name``.pem / ``name``.key under the CA in ``directory``, for
    ``identity``, valid for ``hosts`` plus localhost and loopback, client and server use.

    Raises:
        FailedPrecondition: no CA in ``directory``.
        InvalidInput: a bad file name or validity.
    """
    if not name or "/" in name or name.startswith(".") or name == "ca":
        raise InvalidInput.for_field("name", f"not a usable certificate name: {name!r}")
    if days < 1 and now is None:
        raise InvalidInput.for_field("days", "must be at least 1")
    ca_cert, ca_key = _load_ca(directory)
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, "localhost"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    names += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(identity))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(directory / f"{name}.key", key)
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert


def issue_document_signer(
    directory: Path,
    organisation: str,
    *,
    name: str = SEAL,
    days: int = LEAF_DAYS,
    now: datetime | None = None,
) -> x509.Certificate:
    """Issue (or renew) ``name``.pem / ``name``.key under the CA in ``directory``: the
    document-signing certificate of ``organisation`` (subject C=CN, O and CN its name),
    for signing printed reports and nothing else. ``name``.pem holds the certificate
    followed by the CA's, the chain a PDF signature carries.

    Raises:
        FailedPrecondition: no CA in ``directory``.
        InvalidInput: a bad file name, organisation or validity.
    """
    if not name or "/" in name or name.startswith(".") or name == "ca":
        raise InvalidInput.for_field("name", f"not a usable certificate name: {name!r}")
    organisation = organisation.strip()
    if not organisation or len(organisation) > 64:
        raise InvalidInput.for_field("organisation", "give the issuing organisation's name (at most 64 characters)")
    if days < 1 and now is None:
        raise InvalidInput.for_field("days", "must be at least 1")
    ca_cert, ca_key = _load_ca(directory)
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, organisation),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # nonRepudiation
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING, ADOBE_DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(directory / f"{name}.key", key)
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    (directory / f"{name}.pem").write_bytes(chain)
    return cert


MEMBERS: tuple[tuple[str, str], ...] = (
    *((f"node-{region.value}", node_identity(region)) for region in Region),
    ("gateway", gateway_identity("jjj-gateway")),
)


def init_federation(directory: Path, *, hosts: Iterable[str] = (), organisation: str = "") -> list[str]:
    """The CA and a certificate for each node and the gateway, and, given the issuing
    ``organisation``, the gateway's document-signing certificate; the names written.

    Raises:
        FailedPrecondition: a CA already exists in ``directory``.
        InvalidInput: an unusable organisation name.
    """
    init_ca(directory)
    extra = list(hosts)
    for name, identity in MEMBERS:
        issue(directory, name, identity, hosts=[name, *extra])
    if organisation:
        issue_document_signer(directory, organisation)
    return ["ca", *(name for name, _ in MEMBERS), *([SEAL] if organisation else [])]


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials that demand a client certificate from the federation's CA.

    Raises:
        FailedPrecondition: a file cannot be read.
    """
    cert, key, ca = files.read()
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Client credentials: this member's certificate, and trust in the federation's CA only.

    Raises:
        FailedPrecondition: a file cannot be read.
    """
    cert, key, ca = files.read()
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def peer_identity(context: Any) -> str | None:
    """The common name of a caller's verified certificate, or None on a plain channel."""
    auth = context.auth_context()
    names = auth.get("x509_common_name") or []
    return names[0].decode() if names else None
