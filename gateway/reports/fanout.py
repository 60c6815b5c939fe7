"""Asking the three regional nodes at once, within deadlines, without multiplying load.

- One client per region (:class:`federation.client.NodeClient`; over gRPC, one
  long-lived channel).
- All regions are asked concurrently under one overall deadline; each call also has its
  own per-region deadline, carried to the node as the gRPC deadline.
- Only UNAVAILABLE is retried (the query is an idempotent read), with tenacity, full
  jitter, never past the deadline, and only while the region's retry budget allows: each
  first attempt earns a fraction of a retry, so retries stay a bounded share of calls.
- A per-region circuit breaker fails fast after consecutive failures and lets one probe
  through after a cool-down.

A region that fails is reported with why (:class:`credit.report.RegionFailure`); it never
turns into "no record". Unless turned off, the gateway then asks another region's node
for the failed region from its replica of that region's records (``QueryReplica``): an
answer from a replica that was in step with the region within the staleness limit is
used, marked as such (:class:`credit.report.ReplicaResult`); otherwise the region stays
unavailable, and the reason says why the replicas could not stand in.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from prometheus_client import Histogram
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from credit.catalogue import Catalogue
from credit.clock import iso_z
from credit.errors import CreditError
from credit.identifiers import Subject
from credit.profiles import ReportProfile
from credit.queries import QueryOptions
from credit.regions import Region
from credit.report import RegionFailure, ReplicaResult
from credit.rules import SubjectResult
from federation.client import NODE_CALLS, REPLICA_CALLS, NodeClient, NodeUnavailable, failure_reason

log = structlog.get_logger("jjj.gateway")

FANOUT_SECONDS = Histogram(
    "jjj_gateway_fanout_seconds",
    "Time to get all three regions' answers",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5),
)


async def _back_off(state: RetryCallState) -> None:
    """Before the first of the retries (the first attempt was made outside them): the
    full-jitter wait that retry would have had."""
    if state.attempt_number == 1:
        await asyncio.sleep(random.uniform(0, _FIRST_RETRY_WAIT))


_FIRST_RETRY_WAIT = 0.02  # the first retry's full-jitter ceiling (wait_random_exponential, multiplier 0.02)


@dataclass
class RetryBudget:
    """Retries earned by first attempts: at most ``ratio`` retries per call, on average."""

    ratio: float = 0.1
    cap: float = 10.0
    tokens: float = 10.0

    def earn(self) -> None:
        self.tokens = min(self.cap, self.tokens + self.ratio)

    def spend(self) -> bool:
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class CircuitBreaker:
    """Closed → open after ``threshold`` consecutive failures → one probe after ``cooldown``."""

    threshold: int = 5
    cooldown: float = 5.0
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def _now(self) -> float:
        return self.clock()

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if not self.probing and self._now() - self.opened_at >= self.cooldown:
            self.probing = True  # one call goes through to test the node
            return True
        return False

    def success(self) -> None:
        self.failures, self.opened_at, self.probing = 0, None, False

    def failure(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at, self.probing = self._now(), False


@dataclass
class _Region:
    client: NodeClient
    budget: RetryBudget
    breaker: CircuitBreaker
    catalogue: Catalogue | None = None


class FanOut:
    def __init__(
        self,
        clients: Mapping[Region, NodeClient],
        *,
        deadline: float = 3.0,
        region_deadline: float = 2.0,
        retry_ratio: float = 0.1,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 5.0,
        replica_fallback: bool = True,
        replica_max_age: float = 3600.0,
    ) -> None:
        self.deadline = deadline
        self.region_deadline = region_deadline
        # When a region fails, ask another region's node for it from its replica; use
        # the answer only when that replica was in step within replica_max_age seconds.
        self.replica_fallback = replica_fallback
        self.replica_max_age = replica_max_age
        self._regions = {
            region: _Region(client, RetryBudget(ratio=retry_ratio), CircuitBreaker(breaker_threshold, breaker_cooldown))
            for region, client in clients.items()
        }
        self._served_by: dict[Region, Region] = {}  # the peer that last served a region, asked first

    def catalogues(self) -> dict[Region, Catalogue | None]:
        return {region: state.catalogue for region, state in self._regions.items()}

    async def refresh_catalogues(self) -> None:
        """Fetch every region's catalogue; a region that does not answer keeps what is known."""

        async def one(state: _Region) -> None:
            try:
                state.catalogue = await state.client.catalogue(timeout=self.region_deadline)
            except CreditError as error:
                log.warning("catalogue_unavailable", region=state.client.region.value, reason=failure_reason(error))

        await asyncio.gather(*(one(state) for state in self._regions.values()))

    async def query(
        self,
        subject: Subject,
        profile: ReportProfile,
        options: QueryOptions,
        *,
        purpose: str,
        assertion: str | Callable[[], str] = "",
    ) -> dict[Region, SubjectResult | RegionFailure]:
        """Every region's answer, or why there is none, within the overall deadline.

        ``assertion`` is the signed on-behalf-of assertion every node call carries, or
        what makes one: a node accepts each assertion once, so every call (a retry, a
        replica's answer) gets its own.
        """
        started = time.monotonic()
        expires = started + self.deadline
        mint: Callable[[], str] = assertion if callable(assertion) else (lambda: assertion)
        tasks = {
            region: asyncio.create_task(self._ask(state, subject, profile, options, purpose, mint, expires))
            for region, state in self._regions.items()
        }
        done, pending = await asyncio.wait(tasks.values(), timeout=self.deadline)
        for task in pending:
            task.cancel()
        answers: dict[Region, SubjectResult | RegionFailure] = {}
        for region, task in tasks.items():
            if task in done and not task.cancelled():
                answers[region] = task.result()
            else:
                answers[region] = RegionFailure(f"超时 (no answer within the {self.deadline:g} s deadline)")
        FANOUT_SECONDS.observe(time.monotonic() - started)
        return answers

    async def _ask(
        self,
        state: _Region,
        subject: Subject,
        profile: ReportProfile,
        options: QueryOptions,
        purpose: str,
        assertion: Callable[[], str],
        expires: float,
    ) -> SubjectResult | RegionFailure:
        region = state.client.region
        fallback = self.replica_fallback and len(self._regions) > 1
        # With the fallback on, the region's own node gets the per-region deadline, retries
        # included, and what is left of the overall deadline goes to a replica.
        own_expires = min(expires, time.monotonic() + self.region_deadline) if fallback else expires

        async def failed(reason: str) -> SubjectResult | RegionFailure:
            if not fallback:
                return RegionFailure(reason)
            return await self._from_replica(state, subject, profile, options, purpose, assertion, expires, reason)

        if not state.breaker.allow():
            NODE_CALLS.labels(region.value, "CIRCUIT_OPEN").inc()
            return await failed("熔断中，暂停访问 (circuit open after repeated failures)")
        state.budget.earn()

        def may_retry(error: BaseException) -> bool:
            return (
                isinstance(error, NodeUnavailable)
                and error.retryable
                and own_expires - time.monotonic() > 0.05
                and state.budget.spend()
            )

        async def ask() -> SubjectResult:
            timeout = max(0.001, min(self.region_deadline, own_expires - time.monotonic()))
            return await state.client.query(
                subject,
                profile,
                options,
                purpose=purpose,
                timeout=timeout,
                assertion=assertion(),
                catalogue=state.catalogue,
            )

        try:
            try:
                # The first attempt is made directly: the retrying machinery costs more
                # than the call itself, and is needed only once a call has failed.
                result = await ask()
            except CreditError as first:
                if not may_retry(first):
                    raise
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(may_retry),
                    wait=wait_random_exponential(multiplier=0.02, max=0.2),
                    stop=stop_after_attempt(2) | stop_before_delay(max(0.0, own_expires - time.monotonic())),
                    before=_back_off,
                    reraise=True,
                ):
                    with attempt:
                        result = await ask()
        except CreditError as error:
            state.breaker.failure()
            reason = failure_reason(error)
            log.info("region_failed", region=region.value, reason=reason)
            return await failed(reason)
        state.breaker.success()
        if state.catalogue is None or state.catalogue.version != result.catalogue_version:
            # Without it the answer is merged on its own; the catalogue is fetched next time.
            with contextlib.suppress(CreditError):
                state.catalogue = await state.client.catalogue(timeout=max(0.001, expires - time.monotonic()))
        return result

    async def _from_replica(
        self,
        state: _Region,
        subject: Subject,
        profile: ReportProfile,
        options: QueryOptions,
        purpose: str,
        assertion: Callable[[], str],
        expires: float,
        reason: str,
    ) -> SubjectResult | RegionFailure:
        """The failed region's answer from another region's replica of it, or why none.

        Peers whose own breaker is open are not asked; the one that last served the
        region is asked first, then the others, one at a time, within the overall
        deadline. A replica not yet in step with the region, or last in step longer
        ago than the staleness limit, is not used.
        """
        origin = state.client.region
        preferred = self._served_by.get(origin)
        peers = sorted(
            (peer for region, peer in self._regions.items() if region is not origin),
            key=lambda peer: peer.client.region is not preferred,
        )
        refusals = []
        for peer in peers:
            serving = peer.client.region
            if peer.breaker.opened_at is not None:
                refusals.append(f"{serving.value}: 熔断中 (circuit open)")
                continue
            remaining = expires - time.monotonic() - 0.01
            if remaining <= 0.005:
                refusals.append("时间已用尽 (no time left before the deadline)")
                break
            try:
                result = await peer.client.query_replica(
                    origin,
                    subject,
                    profile,
                    options,
                    purpose=purpose,
                    timeout=min(self.region_deadline, remaining),
                    assertion=assertion(),
                    catalogue=state.catalogue,
                )
            except CreditError as error:
                refusals.append(f"{serving.value}: {failure_reason(error)}")
                continue
            refusal = self._stale(origin, result)
            if refusal:
                REPLICA_CALLS.labels(origin.value, serving.value, "STALE").inc()
                refusals.append(f"{serving.value}: {refusal}")
                continue
            REPLICA_CALLS.labels(origin.value, serving.value, "OK").inc()
            self._served_by[origin] = serving
            log.info(
                "region_served_from_replica",
                region=origin.value,
                served_by=serving.value,
                replica_as_of=result.replica_as_of.isoformat() if result.replica_as_of else None,
                reason=reason,
            )
            if state.catalogue is None or state.catalogue.version != result.catalogue_version:
                with contextlib.suppress(CreditError):
                    state.catalogue = await peer.client.catalogue(
                        timeout=max(0.001, expires - time.monotonic()), origin=origin
                    )
            return result
        detail = "; ".join(refusals) or "没有其他地区可问 (no other region to ask)"
        return RegionFailure(f"{reason}；副本亦不可用 (no usable replica: {detail})")

    def _stale(self, origin: Region, result: ReplicaResult) -> str:
        """Why a replica's answer may not stand in for the region, or "" when it may."""
        if result.replica_as_of is None:
            return f"副本尚未与{origin.name_zh}同步 (the replica has not caught up with {origin.value} yet)"
        age = (datetime.now(UTC) - result.replica_as_of).total_seconds()
        if age > self.replica_max_age:
            as_of = iso_z(result.replica_as_of)
            return (
                f"副本数据截至 {as_of}，超过时限 (the replica is as of {as_of}, {age:.0f} s ago, "
                f"beyond the {self.replica_max_age:g} s limit)"
            )
        return ""
