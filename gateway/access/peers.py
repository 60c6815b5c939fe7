"""Trust between the gateway instances of the federation: each instance honours the
sessions of the peers it was configured to trust, by their published keys (a JWKS file
or the peer's ``/.well-known/jwks.json``), fetched at start and refreshed periodically
so that a peer's key rotation is picked up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import structlog

from credit.errors import FailedPrecondition
from credit.signing import Keyring, VerificationError
from gateway.access.auth import Sessions

log = structlog.get_logger("jjj.gateway")


async def load_jwks(source: str, *, timeout: float = 5.0) -> Keyring:
    """The keys published at ``source``: an http(s) URL or a file path.

    Raises:
        FailedPrecondition: unreachable, unreadable, or not a JWKS document.
    """
    try:
        if source.startswith(("http://", "https://")):
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
                http.get(source) as reply,
            ):
                reply.raise_for_status()
                document = await reply.json(content_type=None)
        else:
            document = json.loads(await asyncio.to_thread(Path(source).read_text, encoding="utf-8"))
        return Keyring.from_jwks(document)
    except (OSError, ValueError, aiohttp.ClientError, VerificationError) as exc:
        raise FailedPrecondition(f"cannot read the keys at {source}: {exc}") from exc


async def refresh_peers(sessions: Sessions, peers: dict[str, str]) -> None:
    """Load every trusted peer's keys; a peer that cannot be read keeps what was known.

    Raises nothing: failures are logged.
    """

    async def one(issuer: str, source: str) -> None:
        try:
            sessions.peers[issuer] = await load_jwks(source)
        except FailedPrecondition as exc:
            log.warning("peer_keys_unreadable", issuer=issuer, reason=exc.detail)

    await asyncio.gather(*(one(issuer, source) for issuer, source in peers.items()))


async def watch_peers(sessions: Sessions, peers: dict[str, str], every: float = 60.0) -> None:
    """Refresh the peers' keys every ``every`` seconds, until cancelled."""
    while True:
        await asyncio.sleep(every)
        await refresh_peers(sessions, peers)
