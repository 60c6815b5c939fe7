"""The gateway's settings: read once from the environment, overridden by the command line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from credit.errors import InvalidInput
from credit.regions import Region
from nodes.settings import env_values


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    listen: str = "127.0.0.1:8080"
    grpc_listen: str = "127.0.0.1:50060"
    db_url: str = "sqlite:///gateway.db"
    keys_dir: str = "var/keys"
    issuer: str = "jjj-gateway"
    nodes: dict[Region, str] = field(default_factory=dict)
    deadline: float = 3.0
    region_deadline: float = 2.0
    session_minutes: int = 30
    default_profile: str = "tianjin-2023"

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
                ("deadline", float),
                ("region_deadline", float),
                ("session_minutes", int),
                ("default_profile", str),
            ),
        )
        if "JJJ_GATEWAY_NODES" in env:
            values["nodes"] = parse_nodes(env["JJJ_GATEWAY_NODES"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("nodes"), str):
            values["nodes"] = parse_nodes(values["nodes"])
        settings = cls(**values)
        if settings.region_deadline > settings.deadline:
            raise InvalidInput.for_field("region_deadline", "must not exceed the overall deadline")
        return settings


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
