"""Witnesses of the peers' audit logs: each instance publishes its latest signed audit
checkpoint (``GET /api/v1/audit/checkpoint``), and the instances that trust it fetch it
periodically and keep every one they see, in their own database. A history rewritten
or cut later, by whoever can write the peer's database, then no longer matches the
copies kept here (``jjj audit verify --peer``), and a peer that goes back or presents
a second history is logged the moment it is seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import aiohttp
import structlog

from credit.audit import Checkpoint, open_checkpoint
from credit.errors import FailedPrecondition
from credit.signing import Keyring, VerificationError
from infra.auditlog import Kept, PeerCheckpoints

log = structlog.get_logger("jjj.gateway")


async def fetch_checkpoint(url: str, keyring: Keyring, *, timeout: float = 5.0) -> Checkpoint | None:
    """The checkpoint a peer publishes at ``url``, its signature proven with the peer's
    keys; None while the peer has sealed nothing.

    Raises:
        FailedPrecondition: unreachable, not JSON, or not a checkpoint signed by the peer.
    """
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
            http.get(url) as reply,
        ):
            if reply.status == 404:
                return None
            reply.raise_for_status()
            document = await reply.json(content_type=None)
        if not isinstance(document, dict) or not isinstance(document.get("jws"), str):
            raise FailedPrecondition(f"{url} did not answer with an audit checkpoint")
        checkpoint = open_checkpoint(document["jws"], keyring)
    except VerificationError as exc:
        raise FailedPrecondition(f"the audit checkpoint at {url} is not the peer's: {exc.detail}") from exc
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise FailedPrecondition(f"cannot read the audit checkpoint at {url}: {exc}") from exc
    if document.get("seq") != checkpoint.seq or document.get("hash") != checkpoint.hash:
        raise FailedPrecondition(f"the audit checkpoint at {url} does not match its signature")
    return checkpoint


async def witness_peers(
    store: PeerCheckpoints, keys: Callable[[str], Keyring | None], sources: Mapping[str, str]
) -> dict[str, Kept]:
    """Fetch every peer's published checkpoint and keep it; what each told, by issuer
    (a peer that could not be read, or has sealed nothing yet, is left out).

    ``keys`` gives a peer's published keys by issuer (the keys its sessions are checked
    with). Raises nothing: failures are logged.
    """

    async def one(issuer: str, url: str) -> tuple[str, Kept | None]:
        keyring = keys(issuer)
        if keyring is None:
            log.warning("peer_checkpoint_unchecked", issuer=issuer, reason="the peer's keys are not loaded")
            return issuer, None
        try:
            checkpoint = await fetch_checkpoint(url, keyring)
            if checkpoint is None:
                return issuer, None
            kept = await store.keep(issuer, checkpoint)
        except FailedPrecondition as exc:
            log.warning("peer_checkpoint_unreadable", issuer=issuer, reason=exc.detail)
            return issuer, None
        except Exception:
            log.exception("peer_checkpoint_not_kept", issuer=issuer)
            return issuer, None
        if kept is Kept.CONFLICT:
            log.error("peer_audit_rewritten", issuer=issuer, seq=checkpoint.seq, hash=checkpoint.hash)
        elif kept is Kept.BEHIND:
            log.error("peer_audit_went_back", issuer=issuer, seq=checkpoint.seq)
        return issuer, kept

    told = await asyncio.gather(*(one(issuer, url) for issuer, url in sources.items()))
    return {issuer: kept for issuer, kept in told if kept is not None}


async def watch_peer_checkpoints(
    store: PeerCheckpoints,
    keys: Callable[[str], Keyring | None],
    sources: Mapping[str, str],
    every: float = 60.0,
) -> None:
    """Witness the peers now and every ``every`` seconds, until cancelled."""
    while True:
        await witness_peers(store, keys, sources)
        await asyncio.sleep(every)
