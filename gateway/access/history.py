"""Access history: who asked about whom, read from the gateway's audit log for the
subject it concerns (查询记录) or, for an administrator, in full."""

from __future__ import annotations

from credit import policy
from credit.audit import Entry
from credit.policy import Principal
from gateway.registry import Registry
from infra.auditlog import AuditLog


class History:
    def __init__(self, audit: AuditLog, registry: Registry) -> None:
        self.audit = audit
        self.registry = registry

    async def mine(self, principal: Principal, *, before: int | None = None, limit: int = 100) -> list[Entry]:
        """The entries about the principal's own subject, newest first.

        Raises:
            PermissionDenied: an account that speaks for no subject.
        """
        subject = policy.require_own_history(principal)
        entries: list[Entry] = await self.registry.read(
            lambda: self.audit.find(subject=subject, before=before, limit=limit)
        )
        return entries

    async def everything(
        self,
        principal: Principal,
        *,
        subject: str | None = None,
        actor: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[Entry]:
        """Every entry, newest first, optionally about one subject or by one actor.

        Raises:
            PermissionDenied: not an administrator.
        """
        policy.require_full_audit(principal)
        entries: list[Entry] = await self.registry.read(
            lambda: self.audit.find(subject=subject, actor=actor, before=before, limit=limit)
        )
        return entries
