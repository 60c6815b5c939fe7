"""Reports whose data later changed say so: the gateway follows every region's change
feed and marks *superseded* each valid report that contains an earlier version of a
changed record (an objection upheld or corrected, a record revoked or repaired, a
correction ingested). The verify page then tells a bank that the report it holds is no
longer the current picture.

Each region's feed is followed from a cursor kept in the gateway's database; a batch of
changes and the cursor move are written in one transaction, so a restart neither loses
nor repeats work (and marking is idempotent anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from sqlalchemy import Connection, and_, or_, select, update

from credit.errors import CreditError
from credit.regions import Region
from federation.client import NodeClient, status_text
from gateway.registry import Registry, feed_cursors, report_records, reports

log = structlog.get_logger("jjj.gateway")

BATCH = 500


def _cursor(conn: Connection, region: Region) -> int:
    value = conn.execute(select(feed_cursors.c.seq).where(feed_cursors.c.region == region.value)).scalar()
    return int(value or 0)


def supersede(conn: Connection, region: Region, changes: Sequence[tuple[str, int]], seq: int) -> int:
    """Mark the valid reports containing an earlier version of any changed record, and
    move the region's cursor to ``seq``; the number of reports marked.

    Raises:
        sqlalchemy.exc.OperationalError: the database cannot be written.
    """
    marked = 0
    for start in range(0, len(changes), 200):
        part = changes[start : start + 200]
        older = or_(*(and_(report_records.c.record_id == rid, report_records.c.version < v) for rid, v in part))
        affected = select(report_records.c.report_no).where(report_records.c.region == region.value, older)
        result = conn.execute(
            update(reports)
            .where(reports.c.status == "valid", reports.c.report_no.in_(affected))
            .values(status="superseded")
        )
        marked += int(result.rowcount or 0)
    if conn.execute(update(feed_cursors).where(feed_cursors.c.region == region.value).values(seq=seq)).rowcount == 0:
        conn.execute(feed_cursors.insert().values(region=region.value, seq=seq))
    return marked


class SupersedeWatcher:
    def __init__(self, registry: Registry, clients: Sequence[NodeClient], *, retry: float = 2.0) -> None:
        self.registry = registry
        self.clients = clients
        self.retry = retry
        self._tasks: list[asyncio.Task[None]] = []

    async def start_new_registry_at_heads(self, *, timeout: float = 5.0) -> None:
        """Let a gateway whose registry holds no report skip the feeds' history.

        No change stored before now can supersede a report issued after it, so a gateway
        starting with an empty registry follows each region from the node's current head
        instead of replaying every version the region ever stored (minutes of work for a
        region of millions of records). Call it before the gateway issues reports. A
        region that has a cursor already, or whose node does not answer, is left to
        follow from where it is.
        """
        if await asyncio.to_thread(self._has_reports):
            return

        async def one(client: NodeClient) -> None:
            if await asyncio.to_thread(self._read_cursor, client.region):
                return
            try:
                head = await client.head_seq(timeout=timeout)
            except CreditError as error:
                log.info("feed_head_unknown", region=client.region.value, code=error.grpc_code)
                return
            await asyncio.to_thread(self._apply, client.region, [], head)
            log.info("feed_followed_from_head", region=client.region.value, seq=head)

        await asyncio.gather(*(one(client) for client in self.clients))

    def _has_reports(self) -> bool:
        with self.registry.engine.connect() as conn:
            return conn.execute(select(reports.c.report_no).limit(1)).first() is not None

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._follow(client)) for client in self.clients]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _read_cursor(self, region: Region) -> int:
        with self.registry.engine.connect() as conn:
            return _cursor(conn, region)

    def _apply(self, region: Region, changes: list[tuple[str, int]], seq: int) -> int:
        with self.registry.engine.begin() as conn:
            return supersede(conn, region, changes, seq)

    async def _follow(self, client: NodeClient) -> None:
        region = client.region
        while True:
            cursor = await asyncio.to_thread(self._read_cursor, region)
            queue: asyncio.Queue[tuple[int, str, int] | None] = asyncio.Queue(maxsize=BATCH * 4)

            async def read(after: int, queue: asyncio.Queue[tuple[int, str, int] | None]) -> None:
                try:
                    async for change in client.changes(after):
                        await queue.put((change.seq, change.record_id, change.version))
                except CreditError as error:
                    log.info("change_feed_interrupted", region=region.value, code=status_text(error))
                except Exception:
                    log.exception("change_feed_failed", region=region.value)
                # Not in a ``finally``: when the watcher is stopped, the reader is
                # cancelled, possibly while waiting on a full queue that nobody reads
                # any more; waiting to put the end marker there would never return.
                await queue.put(None)

            reader = asyncio.create_task(read(cursor, queue))
            try:
                ended = False
                while not ended:
                    # Whatever has arrived, up to a batch, in one transaction.
                    item = await queue.get()
                    batch = []
                    while item is not None:
                        batch.append(item)
                        if len(batch) >= BATCH or queue.empty():
                            break
                        item = queue.get_nowait()
                    ended = item is None
                    if batch:
                        await self._flush(region, [(rid, v) for _, rid, v in batch], batch[-1][0])
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            await asyncio.sleep(self.retry)

    async def _flush(self, region: Region, changes: list[tuple[str, int]], seq: int) -> None:
        marked = await asyncio.to_thread(self._apply, region, changes, seq)
        if marked:
            log.info("reports_superseded", region=region.value, reports=marked, through_seq=seq)
