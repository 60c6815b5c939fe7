"""Someone who can write the gateway's database rewrites the audit log: edits an entry and
recomputes the chain after it, or cuts the tail and moves the head, deleting the
checkpoints that would tell. The log must carry checkpoints at the gateway's cadence, the
head must agree with the chain and the last checkpoint, and the checkpoints the gateway
published are kept by its peers, which a rewritten or cut history no longer matches."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from credit.audit import Action, Checkpoint, Entry, Event, checkpoint_document, entry_hash, open_checkpoint
from credit.errors import InvalidInput
from credit.signing import Keyring, SigningKey
from gateway.access.checkpoints import witness_peers
from gateway.access.keys import KeyStore
from gateway.api.http import SESSIONS
from gateway.registry import Registry
from gateway.server import start_gateway
from gateway.settings import GatewaySettings
from infra.auditlog import AuditLog, Kept, PeerCheckpoints, checkpoints, entries, head
from infra.db import as_utc, sync_engine

KEY = SigningKey.generate()
RING = Keyring([KEY.private.public_key()])


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Process:
    """One gateway process writing the log, sealing it every minute as the gateway does
    (and at every tenth entry, as it does at every thousandth)."""

    def __init__(self, url: str, clock: Clock, *, seal_every: int = 10, seconds: float = 60.0) -> None:
        self.clock, self.seconds = clock, seconds
        self.log = AuditLog(sync_engine(url), sealer=lambda: KEY, seal_every=seal_every, clock=clock)
        self.next_seal = clock.now + timedelta(seconds=seconds)

    async def wait(self, seconds: float) -> None:
        end = self.clock.now + timedelta(seconds=seconds)
        while self.next_seal <= end:
            self.clock.now = self.next_seal
            await self.log.seal()
            self.next_seal += timedelta(seconds=self.seconds)
        self.clock.now = end

    async def write(self, count: int, *, apart: float = 1.0) -> None:
        for i in range(count):
            await self.wait(apart)
            await self.log.record(Event(f"user{i % 3}", "enterprise", Action.REPORT_VIEWED, "S1", "贷款审批"))


@pytest.fixture
def url(db_url: str) -> str:
    """A gateway's database (SQLite, then PostgreSQL), migrated."""
    Registry.open(db_url).close()
    return db_url


@pytest.fixture
def jwks(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(RING.jwks()), encoding="utf-8")
    return path


def verify(url: str, jwks: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jjj", "audit", "verify", "--db", url, "--jwks", str(jwks), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _entry(row: Any) -> Entry:
    return Entry(**{**row._mapping, "at": as_utc(row.at)})


def rewrite(url: str, seq: int, **changes: str) -> None:
    """Edit entry ``seq``, recompute the chain from it, delete the checkpoints from it on
    and set the head to agree: all a database writer can do without the signing key."""
    engine = sync_engine(url)
    with engine.begin() as conn:
        rows = conn.execute(select(entries).where(entries.c.seq >= seq).order_by(entries.c.seq)).all()
        prev = rows[0].prev_hash
        for row in rows:
            entry = _entry(row)
            edited = Entry(**{**{name: getattr(entry, name) for name in Entry.__slots__}, **changes})
            new = entry_hash(prev, entry.seq, entry.at, edited if entry.seq == seq else entry)
            values = {**(changes if entry.seq == seq else {}), "prev_hash": prev, "hash": new}
            conn.execute(update(entries).where(entries.c.seq == entry.seq).values(**values))
            prev = new
        conn.execute(delete(checkpoints).where(checkpoints.c.seq >= seq))
        sealed = conn.execute(select(func.coalesce(func.max(checkpoints.c.seq), 0))).scalar_one()
        conn.execute(update(head).values(hash=prev, sealed_seq=sealed))
    engine.dispose()


def cut(url: str, keep: int, *, checkpoints_too: bool = True, head_too: bool = True) -> None:
    """Delete the entries after ``keep`` (and the checkpoints of them), and move the head back."""
    engine = sync_engine(url)
    with engine.begin() as conn:
        conn.execute(delete(entries).where(entries.c.seq > keep))
        if checkpoints_too:
            conn.execute(delete(checkpoints).where(checkpoints.c.seq > keep))
        last = conn.execute(select(entries.c.hash).where(entries.c.seq == keep)).scalar_one()
        sealed = conn.execute(select(func.coalesce(func.max(checkpoints.c.seq), 0))).scalar_one()
        conn.execute(update(head).values(seq=keep, hash=last, **({"sealed_seq": sealed} if head_too else {})))
    engine.dispose()


async def test_an_edited_entry_with_a_recomputed_chain_lacks_the_checkpoints_it_must_have(url: str, jwks: Path) -> None:
    process = Process(url, Clock())
    await process.write(25)  # 25 s: checkpoints at entries 10 and 20 only
    assert verify(url, jwks, "--seal-every", "10").returncode == 0
    rewrite(url, 7, purpose="别的用途")
    assert process.log.verify(RING).intact  # chain and head agree: alone they cannot tell
    checked = verify(url, jwks, "--seal-every", "10")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "BROKEN at entry 1" in checked.stderr and "entry 10 has no checkpoint" in checked.stderr
    process.log.engine.dispose()


async def test_a_rewrite_within_fewer_entries_than_the_count_still_lacks_the_minutes_checkpoints(
    url: str, jwks: Path
) -> None:
    process = Process(url, Clock(), seal_every=1000)
    await process.write(12, apart=20)  # four minutes, sealed every minute
    assert verify(url, jwks).returncode == 0
    rewrite(url, 3, actor="nobody")
    checked = verify(url, jwks)
    assert checked.returncode == 1
    assert "BROKEN at entry 3" in checked.stderr and "no checkpoint between them" in checked.stderr
    process.log.engine.dispose()


async def test_an_honest_log_with_a_quiet_period_and_a_restart_verifies(url: str, jwks: Path) -> None:
    clock = Clock()
    first = Process(url, clock)
    await first.write(5)
    await first.wait(3 * 3600)  # nobody asks for three hours: one seal, then nothing to seal
    await first.write(17)
    # The process dies between two seals: its last entries are unsealed.
    clock.now += timedelta(hours=5)
    second = Process(url, clock)
    await second.write(12)  # its first entry seals what the first left
    checked = verify(url, jwks, "--seal-every", "10")
    assert checked.returncode == 0, checked.stderr
    assert "INTACT: 34 entries" in checked.stdout
    await second.wait(120)
    assert verify(url, jwks, "--seal-every", "10").returncode == 0
    for process in (first, second):
        process.log.engine.dispose()


async def test_a_cut_tail_with_a_moved_head_is_found_by_a_newer_checkpoint_or_the_head(url: str, jwks: Path) -> None:
    process = Process(url, Clock())
    await process.write(25)
    await process.wait(60)  # sealed at 25
    cut(url, 15, checkpoints_too=False)
    checked = verify(url, jwks, "--seal-every", "10")
    assert "BROKEN at entry 16" in checked.stderr and "a checkpoint seals entry 25" in checked.stderr
    process.log.engine.dispose()


async def test_checkpoints_deleted_behind_the_heads_back_are_found(url: str, jwks: Path) -> None:
    process = Process(url, Clock())
    await process.write(25)
    await process.wait(60)
    cut(url, 15, head_too=False)  # the head still says it was sealed up to entry 25
    checked = verify(url, jwks, "--seal-every", "10")
    assert "BROKEN at entry 11" in checked.stderr and "sealed up to entry 25" in checked.stderr
    process.log.engine.dispose()


async def test_a_cut_or_rewritten_history_is_found_against_the_checkpoints_a_peer_kept(
    url: str, jwks: Path, tmp_path: Path
) -> None:
    process = Process(url, Clock())
    await process.write(25)
    await process.wait(60)
    # What a peer fetched from GET /api/v1/audit/checkpoint as the log grew, exported.
    kept = tmp_path / "kept.json"
    with process.log.engine.connect() as conn:
        rows = conn.execute(select(checkpoints).where(checkpoints.c.seq.in_((20, 25))).order_by(checkpoints.c.seq))
        seen = [Checkpoint(row.seq, row.hash, as_utc(row.at), row.jws) for row in rows]
    kept.write_text(json.dumps({"checkpoints": [checkpoint_document(c, "jjj-gateway") for c in seen]}))
    assert "2 kept by peers match" in verify(url, jwks, "--seal-every", "10", "--peer", str(kept)).stdout

    cut(url, 20)  # everything consistent: only a copy kept elsewhere can tell
    assert verify(url, jwks, "--seal-every", "10").returncode == 0
    checked = verify(url, jwks, "--seal-every", "10", "--peer", str(kept))
    assert checked.returncode == 1
    assert "BROKEN at entry 21" in checked.stderr and "a peer keeps a checkpoint of entry 25" in checked.stderr

    rewrite(url, 18, detail="x")
    checked = verify(url, jwks, "--seal-every", "10", "--peer", str(kept))
    assert "BROKEN at entry 20" in checked.stderr and "checkpoint of it a peer keeps" in checked.stderr
    process.log.engine.dispose()


async def test_the_latest_checkpoint_is_published_and_verifies_with_the_jwks(gateway: Any) -> None:
    api, running, _ = gateway
    status, body, _ = await api.call("GET", "/api/v1/audit/checkpoint")
    assert status == 404 and body["status"] == 404  # nothing sealed yet
    await api.login("clean-co", "demo-clean-2024")
    sealed = await running.service.audit.seal()
    status, body, reply = await api.call("GET", "/api/v1/audit/checkpoint")
    assert status == 200 and reply.headers["Cache-Control"] == "no-store"
    assert body["seq"] == sealed.seq and body["issuer"] == running.settings.issuer
    _, published, _ = await api.call("GET", "/.well-known/jwks.json")
    checkpoint = open_checkpoint(body["jws"], Keyring.from_jwks(published))
    assert (checkpoint.seq, checkpoint.hash) == (body["seq"], body["hash"])
    assert body["kid"] in {key["kid"] for key in published["keys"]}
    entry = running.service.audit.find(limit=1)[0]
    assert (entry.seq, entry.hash) == (body["seq"], body["hash"])


async def test_a_trusting_peer_keeps_the_checkpoints_it_fetched(gateway: Any, tmp_path: Path) -> None:
    api, running, nodes = gateway
    KeyStore(tmp_path / "keys-b").ensure()
    peer = await start_gateway(
        GatewaySettings.from_env(
            {},
            listen="127.0.0.1:0",
            grpc_listen="127.0.0.1:0",
            db_url=f"sqlite:///{tmp_path / 'gateway-b.db'}",
            keys_dir=str(tmp_path / "keys-b"),
            issuer="jjj-gateway-b",
            trust=f"{running.settings.issuer}={running.url}/.well-known/jwks.json",
            nodes={region: handle.address for region, handle in nodes.items()},
        )
    )
    try:
        store = PeerCheckpoints(peer.registry.engine, writes=peer.registry.writes)
        sources = peer.settings.checkpoint_sources()
        assert sources == {running.settings.issuer: f"{running.url}/api/v1/audit/checkpoint"}
        keys = peer.runner.app[SESSIONS].peers.get
        await api.login("clean-co", "demo-clean-2024")
        first = await running.service.audit.seal()
        assert await witness_peers(store, keys, sources) == {running.settings.issuer: Kept.NEW}
        await api.login("records-co", "demo-records-2024")
        await api.login("bank", "demo-bank-2024")
        second = await running.service.audit.seal()
        assert await witness_peers(store, keys, sources) == {running.settings.issuer: Kept.NEW}
        assert await witness_peers(store, keys, sources) == {running.settings.issuer: Kept.KNOWN}
        assert [(c.seq, c.hash) for _, c in store.kept(running.settings.issuer)] == [
            (first.seq, first.hash),
            (second.seq, second.hash),
        ]
        await running.registry.writes.flush()
        await peer.registry.writes.flush()

        jwks = tmp_path / "a-jwks.json"
        jwks.write_text(json.dumps((await api.call("GET", "/.well-known/jwks.json"))[1]), encoding="utf-8")
        own, kept_by_peer = running.settings.db_url, peer.settings.db_url
        assert "2 kept by peers match" in verify(own, jwks, "--peer", kept_by_peer).stdout
        exported = subprocess.run(
            [sys.executable, "-m", "jjj", "audit", "kept", "--db", kept_by_peer],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert [c["seq"] for c in json.loads(exported.stdout)["checkpoints"]] == [first.seq, second.seq]

        cut(own, first.seq)  # back to the first checkpoint, head moved, nothing left to tell locally
        assert verify(own, jwks).returncode == 0
        checked = verify(own, jwks, "--peer", kept_by_peer)
        assert checked.returncode == 1 and f"a peer keeps a checkpoint of entry {second.seq}" in checked.stderr
        # The peer sees the log go back the next time it looks.
        assert await witness_peers(store, keys, sources) == {running.settings.issuer: Kept.BEHIND}
    finally:
        await peer.stop()


async def test_a_deleted_head_row_is_a_break(url: str, jwks: Path) -> None:
    process = Process(url, Clock())
    await process.write(3)
    with process.log.engine.begin() as conn:
        conn.execute(delete(head))
    checked = verify(url, jwks)
    assert checked.returncode == 1 and "head row is missing" in checked.stderr
    process.log.engine.dispose()


def test_where_peers_publish_their_checkpoints() -> None:
    settings = GatewaySettings.from_env(
        {},
        trust="tianjin=https://tj.example/.well-known/jwks.json,hebei=/etc/jjj/hebei.json,beijing=/etc/jjj/bj.json",
        audit_peers="hebei=https://hb.example/",
    )
    assert settings.checkpoint_sources() == {
        "tianjin": "https://tj.example/api/v1/audit/checkpoint",
        "hebei": "https://hb.example/api/v1/audit/checkpoint",
    }  # beijing, trusted by a file and not named, is not asked
    with pytest.raises(InvalidInput, match="not a trusted peer"):
        GatewaySettings.from_env({"JJJ_GATEWAY_AUDIT_PEERS": "elsewhere=https://x.example"})
    with pytest.raises(InvalidInput, match="ISSUER="):
        GatewaySettings.from_env({}, trust="hebei=/x.json", audit_peers="hebei")
