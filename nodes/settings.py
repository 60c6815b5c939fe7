"""The node's settings: read once from the environment, overridden by the command line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credit.errors import InvalidInput
from credit.regions import Region
from federation.tls import TlsFiles
from infra.settings import env_values


@dataclass(frozen=True, slots=True)
class NodeSettings:
    region: Region
    db_url: str = "sqlite:///node.db"
    listen: str = "127.0.0.1:50051"
    metrics_listen: str = ""  # HOST:PORT for /metrics and /healthz over HTTP; empty: off
    default_profile: str = "tianjin-2023"
    max_batch: int = 10_000
    max_concurrent_rpcs: int = 256
    max_message_bytes: int = 16 * 1024 * 1024
    grace_seconds: float = 10.0
    pilot_codes_file: str = ""
    # The gateway's JWKS (a file): queries must carry an on-behalf-of assertion signed
    # with one of its keys. Without it a node refuses to start unless allow_unasserted
    # (development and node-only testing) is set.
    gateway_jwks: str = ""
    allow_unasserted: bool = False
    migrate: bool = True
    # mTLS: this node's certificate and key, and the federation CA its callers must
    # present certificates from. All three, or none (plain gRPC, development only).
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    # Peer nodes whose change feeds this node follows into its replica of their regions
    # (region → HOST:PORT); over mTLS with the certificate above when it has one.
    peers: dict[Region, str] = field(default_factory=dict)
    # How often an idle change feed tells its followers they are in step, and how long
    # a follower waits for a word from its peer before it reconnects.
    feed_heartbeat_seconds: float = 5.0
    peer_idle_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> NodeSettings:
        """Settings from ``JJJ_NODE_*`` variables, then explicit overrides (from the CLI).

        Raises:
            InvalidInput: a malformed value.
        """
        env = os.environ if env is None else env
        values = env_values(
            env,
            "JJJ_NODE",
            (
                ("region", str),
                ("db_url", str),
                ("listen", str),
                ("metrics_listen", str),
                ("default_profile", str),
                ("max_batch", int),
                ("max_concurrent_rpcs", int),
                ("max_message_bytes", int),
                ("grace_seconds", float),
                ("pilot_codes_file", str),
                ("gateway_jwks", str),
                ("tls_cert", str),
                ("tls_key", str),
                ("tls_ca", str),
                ("peers", str),
                ("feed_heartbeat_seconds", float),
                ("peer_idle_seconds", float),
            ),
        )
        if env.get("JJJ_NODE_ALLOW_UNASSERTED", "").lower() in ("1", "true", "yes"):
            values["allow_unasserted"] = True
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "region" not in values:
            raise InvalidInput.for_field("region", "no region given (--region or JJJ_NODE_REGION)")
        if isinstance(values["region"], str):
            values["region"] = Region.parse(values["region"])
        if isinstance(values.get("peers"), str):
            values["peers"] = parse_peers(values["peers"])
        settings = cls(**values)
        if settings.max_batch < 1:
            raise InvalidInput.for_field("max_batch", "must be positive")
        if settings.region in settings.peers:
            raise InvalidInput.for_field("peers", f"{settings.region.value} is this node's own region")
        if settings.feed_heartbeat_seconds <= 0 or settings.peer_idle_seconds <= 0:
            raise InvalidInput.for_field("feed_heartbeat_seconds", "heartbeat and idle times must be positive")
        settings.tls_files()
        return settings

    def tls_files(self) -> TlsFiles | None:
        """The mTLS files, or None for plain gRPC.

        Raises:
            InvalidInput: some but not all of the three are given.
        """
        return TlsFiles.of(self.tls_cert, self.tls_key, self.tls_ca)

    def pilot_codes(self) -> frozenset[str]:
        """Known early pilot codes: one per line in ``pilot_codes_file``, ``#`` comments.

        Raises:
            InvalidInput: the file cannot be read.
        """
        if not self.pilot_codes_file:
            return frozenset()
        try:
            text = Path(self.pilot_codes_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput.for_field("pilot_codes_file", f"cannot read: {exc}") from exc
        return frozenset(
            line.split("#", 1)[0].strip().upper() for line in text.splitlines() if line.split("#", 1)[0].strip()
        )


def parse_peers(text: str) -> dict[Region, str]:
    """``beijing=HOST:PORT,hebei=HOST:PORT`` as a mapping.

    Raises:
        InvalidInput: a malformed entry, an unknown region, or a region named twice.
    """
    peers: dict[Region, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, address = item.partition("=")
        address = address.strip()
        host, colon, port = address.rpartition(":")
        if not sep or not colon or not host or not port.isdigit():
            raise InvalidInput.for_field("peers", f"expected REGION=HOST:PORT, got {item!r}")
        region = Region.parse(name, field="peers")
        if region in peers:
            raise InvalidInput.for_field("peers", f"{region.value} is named twice")
        peers[region] = address
    return peers
