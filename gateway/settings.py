"""The gateway's settings: read once from the environment, overridden by the command line."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from credit.document import DEMO_ORGANISATION
from credit.errors import InvalidInput
from credit.regions import Region
from federation.tls import TlsFiles
from infra.db import database_url
from infra.settings import env_values


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    listen: str = "127.0.0.1:8080"
    grpc_listen: str = "127.0.0.1:50060"
    db_url: str = "sqlite:///gateway.db"
    keys_dir: str = "var/keys"
    # The instance's technical name: the JWS ``iss`` and the sessions' issuer.
    issuer: str = "jjj-gateway"
    # The issuing organisation people read on pages, printed reports and verification
    # results (签发机构: 天津市公共信用信息中心 for Tianjin's instance), and how to reach
    # its operator (printed on a report's last page; empty: not printed).
    organisation: str = DEMO_ORGANISATION
    contact: str = ""
    nodes: dict[Region, str] = field(default_factory=dict)
    deadline: float = 3.0
    region_deadline: float = 2.0
    session_minutes: int = 30
    default_profile: str = "tianjin-2023"
    # The address users reach this instance at (QR codes and links); empty: the listener.
    public_url: str = ""
    # Other gateway instances of the federation whose sessions this one honours:
    # ISSUER=JWKS_FILE_OR_URL,… (their published keys). Nobody else is trusted.
    trust: str = ""
    # This gateway's certificate and key, and the federation CA: mTLS towards the nodes,
    # and TLS on the gRPC API for banks' and agencies' systems. Those hold no federation
    # certificate, so they need only trust the CA, unless mutual TLS is required here.
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    grpc_require_client_cert: bool = False
    # The organisation's document-signing certificate (PEM, followed by its chain) and
    # key: every printed report is signed with them (PAdES). From the federation CA
    # (`jjj certs issue DIR seal --organisation NAME`). Without them no PDF is printed.
    seal_cert: str = ""
    seal_key: str = ""
    # The CA(s) a handed-in PDF's signature must chain to; empty: tls_ca, the federation CA.
    seal_ca: str = ""
    # Serve the gRPC API without TLS (local development only): logins would cross in clear.
    grpc_plaintext: bool = False
    audit_seal_seconds: float = 60.0
    # Where trusted peers publish their audit checkpoint, for this instance to keep:
    # ISSUER=BASE_URL,… Peers trusted by a JWKS URL ending in /.well-known/jwks.json need
    # no entry (their base URL is that one's).
    audit_peers: str = ""
    # A region whose node does not answer may be served from another region's replica
    # of it, when that replica was in step with the region at most this long ago.
    replica_fallback: bool = True
    replica_max_age_seconds: float = 3600.0
    # Background work one process of the instance does at a time (a batch job, following
    # a region's change feed) is held under a lease of this many seconds, renewed every
    # third of it: the work of a process that died is taken over within about this long.
    lease_seconds: float = 30.0
    # Worker processes of this instance (`jjj gateway --workers N`): each a whole gateway,
    # all on the same ports; more than one needs PostgreSQL.
    workers: int = 1
    # Verification-code lookups allowed per client address a minute, shared out among the
    # instance's worker processes (each allows its share). A code is 80 random bits, so
    # the limit is against load, not guessing: raise it for a bank's verifying system that
    # reaches the instance from one address.
    lookups_per_minute: int = 60

    # The site's operator (网站运营者), named in the footer of every portal page: who runs
    # this instance, where, its service hotline and its ICP filing number (备案号). The
    # defaults say so: they are for the demo; a real instance sets its own.
    operator_name: str = "京津冀公共信用报告服务平台（演示）"
    operator_address: str = "天津市和平区示范路 1 号（演示地址）"
    operator_phone: str = "12345"
    operator_icp: str = "津ICP备00000000号（演示）"

    def lookups_per_process(self) -> int:
        """This process's share of the verification-code lookups a minute per address
        (rounded up, so that the instance allows at least its setting). Raises nothing."""
        return -(-self.lookups_per_minute // self.workers)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> GatewaySettings:
        """Settings from ``JJJ_GATEWAY_*`` variables (nodes as
        ``JJJ_GATEWAY_NODES=beijing=HOST:PORT,tianjin=HOST:PORT,hebei=HOST:PORT``), then
        explicit overrides.

        Raises:
            InvalidInput: a malformed value.
        """
        env = os.environ if env is None else env
        values = env_values(
            env,
            "JJJ_GATEWAY",
            (
                ("listen", str),
                ("grpc_listen", str),
                ("db_url", str),
                ("keys_dir", str),
                ("issuer", str),
                ("organisation", str),
                ("contact", str),
                ("deadline", float),
                ("region_deadline", float),
                ("session_minutes", int),
                ("default_profile", str),
                ("public_url", str),
                ("trust", str),
                ("tls_cert", str),
                ("tls_key", str),
                ("tls_ca", str),
                ("seal_cert", str),
                ("seal_key", str),
                ("seal_ca", str),
                ("audit_seal_seconds", float),
                ("audit_peers", str),
                ("replica_max_age_seconds", float),
                ("lease_seconds", float),
                ("workers", int),
                ("lookups_per_minute", int),
            ),
        )
        values.update(env_values(env, "JJJ_GATEWAY", _OPERATOR_FIELDS))
        for name in ("replica_fallback", "grpc_require_client_cert", "grpc_plaintext"):
            variable = f"JJJ_GATEWAY_{name.upper()}"
            if (flag := env.get(variable)) is not None:
                values[name] = _flag(variable, flag)
        if "JJJ_GATEWAY_NODES" in env:
            values["nodes"] = parse_nodes(env["JJJ_GATEWAY_NODES"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("nodes"), str):
            values["nodes"] = parse_nodes(values["nodes"])
        settings = cls(**values)
        if settings.region_deadline > settings.deadline:
            raise InvalidInput.for_field("region_deadline", "must not exceed the overall deadline")
        if settings.replica_max_age_seconds < 0:
            raise InvalidInput.for_field("replica_max_age_seconds", "must not be negative")
        if not 1 <= settings.workers <= MAX_WORKERS:
            raise InvalidInput.for_field("workers", f"must be between 1 and {MAX_WORKERS}")
        if settings.workers > 1 and database_url(settings.db_url).startswith("sqlite"):
            raise InvalidInput.for_field(
                "workers",
                "several worker processes need PostgreSQL (JJJ_GATEWAY_DB_URL=postgresql://…): on SQLite one process "
                "serves, as the demo does",
            )
        if not 1 <= settings.lookups_per_minute <= MAX_LOOKUPS_PER_MINUTE:
            raise InvalidInput.for_field(
                "lookups_per_minute", f"must be between 1 and {MAX_LOOKUPS_PER_MINUTE:,} lookups a minute per address"
            )
        if not 1 <= settings.lease_seconds <= 600:
            raise InvalidInput.for_field("lease_seconds", "must be between 1 and 600 seconds")
        if not settings.organisation.strip():
            raise InvalidInput.for_field("organisation", "the issuing organisation's name must not be empty")
        if bool(settings.seal_cert) != bool(settings.seal_key):
            raise InvalidInput.for_field(
                "seal_cert", "the document-signing certificate needs both seal_cert and seal_key"
            )
        settings.trusted()
        settings.checkpoint_sources()
        settings.grpc_api_tls()
        return settings

    @property
    def seal_roots(self) -> str:
        """The CA file a handed-in PDF's signature is checked against ("" for none)."""
        return self.seal_ca or self.tls_ca

    def operator(self) -> Operator:
        """The site's operator, for the portal's footer."""
        return Operator(self.operator_name, self.operator_address, self.operator_phone, self.operator_icp)

    def tls_files(self) -> TlsFiles | None:
        """The mTLS files for calls to the nodes, or None for plain gRPC.

        Raises:
            InvalidInput: some but not all of the three are given.
        """
        return TlsFiles.of(self.tls_cert, self.tls_key, self.tls_ca)

    def grpc_api_tls(self) -> TlsFiles | None:
        """The certificate the gRPC API serves TLS with, or None for plaintext: when
        ``grpc_plaintext`` says so, or when the gateway has no certificate and listens on
        loopback only (nothing leaves the machine).

        Raises:
            InvalidInput: an incomplete certificate; plaintext on an address other hosts
                reach without ``grpc_plaintext``; client certificates required without TLS.
        """
        tls = self.tls_files()
        if self.grpc_plaintext:
            if self.grpc_require_client_cert:
                raise InvalidInput.for_field("grpc_require_client_cert", "needs TLS, but grpc_plaintext is set")
            return None
        if tls is None and self.grpc_require_client_cert:
            raise InvalidInput.for_field(
                "grpc_require_client_cert", "needs the gateway's certificate (tls_cert, tls_key, tls_ca)"
            )
        if tls is None and not _loopback(self.grpc_listen):
            raise InvalidInput.for_field(
                "grpc_listen",
                f"the gRPC API on {self.grpc_listen} would carry logins in clear: give the gateway its certificate "
                "(JJJ_GATEWAY_TLS_CERT, JJJ_GATEWAY_TLS_KEY, JJJ_GATEWAY_TLS_CA), listen on 127.0.0.1, or set "
                "JJJ_GATEWAY_GRPC_PLAINTEXT=1 for local development",
            )
        return tls

    def trusted(self) -> dict[str, str]:
        """The peer instances trusted: issuer → JWKS file or URL.

        Raises:
            InvalidInput: a malformed entry, or one naming this instance's own issuer.
        """
        peers: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in self.trust.split(","))):
            issuer, sep, source = item.partition("=")
            if not sep or not issuer.strip() or not source.strip():
                raise InvalidInput.for_field("trust", f"expected ISSUER=JWKS_FILE_OR_URL, got {item!r}")
            if issuer.strip() == self.issuer:
                raise InvalidInput.for_field("trust", f"{issuer!r} is this instance itself")
            peers[issuer.strip()] = source.strip()
        return peers

    def checkpoint_sources(self) -> dict[str, str]:
        """Where each trusted peer publishes its audit checkpoint: issuer → URL of
        ``/api/v1/audit/checkpoint``, from ``audit_peers`` or beside the peer's JWKS URL.
        Peers trusted by a JWKS file and not named in ``audit_peers`` are not asked.

        Raises:
            InvalidInput: a malformed entry, or one naming a peer that is not trusted.
        """
        trusted = self.trusted()
        bases = {
            issuer: source.removesuffix(_JWKS_PATH)
            for issuer, source in trusted.items()
            if source.startswith(("http://", "https://")) and source.endswith(_JWKS_PATH)
        }
        for item in filter(None, (part.strip() for part in self.audit_peers.split(","))):
            issuer, sep, base = (part.strip() for part in item.partition("="))
            if not sep or not base.startswith(("http://", "https://")):
                raise InvalidInput.for_field("audit_peers", f"expected ISSUER=http(s)://HOST[:PORT], got {item!r}")
            if issuer not in trusted:
                raise InvalidInput.for_field("audit_peers", f"{issuer!r} is not a trusted peer (see trust)")
            bases[issuer] = base.rstrip("/")
        return {issuer: base + CHECKPOINT_PATH for issuer, base in bases.items()}


@dataclass(frozen=True, slots=True)
class Operator:
    """Who runs a gateway instance, as every portal page's footer names it."""

    name: str
    address: str
    phone: str  # the service hotline
    icp: str  # the ICP filing number (备案号)


MAX_WORKERS = 64
MAX_LOOKUPS_PER_MINUTE = 10_000_000
_OPERATOR_FIELDS = (("operator_name", str), ("operator_address", str), ("operator_phone", str), ("operator_icp", str))
_JWKS_PATH = "/.well-known/jwks.json"
CHECKPOINT_PATH = "/api/v1/audit/checkpoint"


def parse_nodes(text: str) -> dict[Region, str]:
    """``beijing=HOST:PORT,tianjin=…`` as a mapping.

    Raises:
        InvalidInput: a malformed entry or an unknown region.
    """
    nodes: dict[Region, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        region, sep, address = item.partition("=")
        if not sep or ":" not in address:
            raise InvalidInput.for_field("nodes", f"expected REGION=HOST:PORT, got {item!r}")
        nodes[Region.parse(region)] = address.strip()
    return nodes


def _loopback(address: str) -> bool:
    """Whether ``HOST:PORT`` names a loopback host, which only this machine reaches."""
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _flag(name: str, value: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off``.

    Raises:
        InvalidInput: anything else.
    """
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise InvalidInput.for_field(name, f"expected 1 or 0 (true or false), got {value!r}")
