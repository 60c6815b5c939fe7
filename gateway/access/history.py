"""Access history: who asked about whom, read from the gateway's audit log for the
subject it concerns (查询记录) or, for an administrator, in full."""

from __future__ import annotations

import enum
import functools

from credit import policy
from credit.audit import Entry
from credit.policy import Principal
from gateway.registry import Registry
from infra.auditlog import AuditLog


class HistoryView(enum.StrEnum):
    """The two halves of a subject's history on the portal."""

    OTHERS = "others"  # 他人查阅: what others did with the subject's reports and records
    OWN = "own"  # 本人操作: what the account itself did (reports, grants, logins, password)


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

    async def page(
        self, principal: Principal, view: HistoryView, *, page: int, per_page: int
    ) -> tuple[list[Entry], bool]:
        """One page (from 1) of the principal's history, newest first, and whether another
        follows: others' access to its subject, or the account's own actions.

        Raises:
            PermissionDenied: an account that speaks for no subject.
        """
        subject = policy.require_own_history(principal)
        find = functools.partial(self.audit.find, offset=(page - 1) * per_page, limit=per_page + 1)
        if view is HistoryView.OTHERS:
            find = functools.partial(find, subject=subject, other_than=principal.username)
        else:
            find = functools.partial(find, actor=principal.username)
        found: list[Entry] = await self.registry.read(find)
        return found[:per_page], len(found) > per_page
