"""Cases as the API and the portal show and take them: JSON bodies and attachment downloads."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from aiohttp import web

from credit.cases import Case, CaseState, Correction
from credit.clock import iso_z_or_none
from credit.errors import (
    InvalidInput,
    NotFound,
)


def attachment_response(case: Case) -> web.Response:
    """A case's attachment as a download that a browser never renders in the site's origin.

    Raises:
        NotFound: the case has no attachment.
    """
    if case.attachment is None:
        raise NotFound(f"办件 {case.number} 没有附件 (case {case.number} has no attachment)")
    return web.Response(
        body=case.attachment.data,
        content_type=case.attachment.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(case.attachment.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        },
    )


def case_body(case: Case) -> dict[str, Any]:
    """A case as the API shows it."""
    record = case.record
    return {
        "number": case.number,
        "region": case.region.value,
        "region_name": case.region.name_zh,
        "kind": case.kind.value,
        "kind_name": case.kind.name_zh,
        "state": case.state.value,
        "state_name": "处理中" if case.state is CaseState.OPEN else "已办结",
        "record_id": case.record_id,
        "record_version": case.record_version,
        "subject_id": case.subject_id,
        "reason": case.reason,
        "attachment": None
        if case.attachment is None
        else {
            "filename": case.attachment.filename,
            "content_type": case.attachment.content_type,
            "size": case.attachment.size,
            "sha256": case.attachment.sha256,
        },
        "filed_by": case.filed_by,
        "filed_at": iso_z_or_none(case.filed_at),
        "resolution": case.resolution.value if case.resolution else None,
        "resolution_name": case.resolution.name_zh if case.resolution else None,
        "resolution_note": case.resolution_note or None,
        "resolved_by": case.resolved_by or None,
        "resolved_at": iso_z_or_none(case.resolved_at),
        "new_version": case.new_version or None,
        "record": None
        if record is None
        else {
            "decision_no": record.decision_no,
            "authority": record.authority,
            "decided_on": record.decided_on.isoformat(),
            "domain": record.domain,
            "scope": record.scope.value,
            "category": record.category,
            "content": record.content,
            "status": record.status.value,
            "version": record.version,
            "under_objection": record.under_objection,
        },
    }


def correction_from_body(body: Any) -> Correction | None:
    """A correction from its JSON form (``null`` or absent: none).

    Raises:
        InvalidInput: not an object, an unknown field, or a date that is not YYYY-MM-DD.
    """
    if body is None:
        return None
    if not isinstance(body, dict):
        raise InvalidInput.for_field("correction", "更正内容应为 JSON 对象 (correction must be an object)")
    fields = {"category", "content", "decision_no", "decided_on", "publicity_until", "removed_on"}
    unknown = sorted(set(body) - fields)
    if unknown:
        raise InvalidInput.for_field("correction", f"不能更正的字段 (fields that cannot be corrected: {unknown})")
    values: dict[str, Any] = {}
    for name, value in body.items():
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise InvalidInput.for_field(f"correction.{name}", "应为文本 (must be a string)")
        if name in ("decided_on", "publicity_until", "removed_on"):
            try:
                values[name] = date.fromisoformat(value)
            except ValueError:
                raise InvalidInput.for_field(f"correction.{name}", "日期格式应为 YYYY-MM-DD") from None
        else:
            values[name] = value.strip()
    return Correction(**values)
