"""File layouts: which column of a published file fills which field of a record.

Authorities publish in several layouts (the national 双公示 行政处罚 standards, the lists
of the national enterprise credit publicity system, the 严重失信主体名单, this project's
own columns); registers of market entities (市场主体登记信息) publish theirs, which load
into the node's register rather than its records (:attr:`Layout.kind`). They are data,
in ``credit/data/layouts.toml``; this module reads them, normalises header cells and
picks the layout a header row is written in.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import Any

from credit.catalogue import Scope
from credit.errors import InvalidInput

# Every field a layout may fill (see the layouts file's header).
FIELDS = (
    "subject_name", "subject_type", "uscc", "reg_no", "org_code", "resident_id", "id_type", "legal_rep",
    "legal_rep_id_type", "legal_rep_id", "decision_no", "category", "content", "fine", "confiscated",
    "decided_on", "publicity_until", "authority", "domain", "scope", "procedure", "status", "removed_on",
    "record_id", "reason", "address", "registered_by", "established_on", "reg_status",
)  # fmt: skip
RECORDS, REGISTER = "records", "register"  # what a file's rows are: records, or register entries

_INVISIBLE = re.compile(r"[\s\u200b-\u200f\u2060\ufeff]+")
_REMARK = re.compile(r"\([^()]*\)$")


def normalise_header(cell: str) -> str:
    """A header cell as layouts name it: half-width, without spaces or invisible characters.

    Raises nothing.
    """
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", cell)).replace("（", "(").replace("）", ")")


def cell_text(value: Any) -> str:
    """A spreadsheet cell as the text a CSV export would hold: dates as ISO dates, whole
    numbers without ``.0``; a number too long for Excel to have kept every digit (a code
    typed as a number) in scientific notation, which the identifier rules refuse."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        if value.is_integer():
            if abs(value) >= 1e15:
                return f"{value:.4E}".replace("E+", "E+")
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**15 else f"{float(value):.4E}"
    if isinstance(value, time | timedelta):
        return str(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class Layout:
    """One published layout: its columns (normalised header → field; "" for columns
    that are known but not stored), the fields a row needs (all of ``required``, one of
    ``required_any``), fixed scope or domain, and what its rows are (:data:`RECORDS` or
    :data:`REGISTER`)."""

    id: str
    name: str
    columns: dict[str, str]
    required: tuple[str, ...]
    scope: Scope | None
    domain: str
    kind: str = RECORDS
    required_any: tuple[str, ...] = ()

    @property
    def is_register(self) -> bool:
        return self.kind == REGISTER


@dataclass(frozen=True, slots=True)
class Mapping:
    """A header row read in a layout: for each field the column positions that fill it."""

    layout: Layout
    positions: dict[str, tuple[int, ...]]
    unknown: tuple[str, ...]  # header cells no layout column matched


@cache
def layouts() -> tuple[Layout, ...]:
    """The packaged layouts, in file order.

    Raises:
        KeyError, ValueError: the packaged data is malformed (a packaging fault).
    """
    text = resources.files("credit").joinpath("data", "layouts.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    common = {normalise_header(k): v for k, v in raw.get("common", {}).items()}
    built = []
    for item in raw["layout"]:
        columns = {normalise_header(k): v for k, v in item["columns"].items()}
        kind = item.get("kind", RECORDS)
        if kind not in (RECORDS, REGISTER):
            raise ValueError(f"layout {item['id']}: unknown kind {kind!r}")
        # The common columns are the records' (领域, 数据范围…): a register has none of them.
        extra = common if kind == RECORDS else {}
        for name, field in {**columns, **extra}.items():
            if field and field not in FIELDS:
                raise ValueError(f"layout {item['id']}: unknown field {field!r} for column {name!r}")
        for name, field in extra.items():
            columns.setdefault(name, field)
        built.append(
            Layout(
                id=item["id"],
                name=item["name"],
                columns=columns,
                required=tuple(item["required"]),
                scope=Scope(item["scope"]) if "scope" in item else None,
                domain=item.get("domain", ""),
                kind=kind,
                required_any=tuple(item.get("required_any", ())),
            )
        )
    return tuple(built)


def _match(layout: Layout, header: Sequence[str]) -> Mapping:
    positions: dict[str, list[int]] = {}
    unknown = []
    for i, cell in enumerate(header):
        name = normalise_header(cell)
        if not name:
            continue
        field = layout.columns.get(name)
        if field is None:
            field = layout.columns.get(_REMARK.sub("", name))
        if field is None:
            unknown.append(cell)
        elif field:
            positions.setdefault(field, []).append(i)
    return Mapping(layout, {k: tuple(v) for k, v in positions.items()}, tuple(unknown))


def _has_identifier(mapping: Mapping) -> bool:
    return any(f in mapping.positions for f in ("uscc", "resident_id", "legal_rep_id", "reg_no", "org_code"))


def _readable(mapping: Mapping) -> bool:
    layout = mapping.layout
    return (
        all(f in mapping.positions for f in layout.required)
        and (not layout.required_any or any(f in mapping.positions for f in layout.required_any))
        and _has_identifier(mapping)
    )


def recognise(header: Sequence[str]) -> Mapping | None:
    """The layout that reads this header row best, or None when none can read it.

    A layout can read a header holding all its required fields, one of its
    ``required_any`` fields (when it names some) and an identifier column; among those,
    the one that recognises most cells wins (file order on ties).

    Raises nothing.
    """
    best: Mapping | None = None
    best_score = 0
    for layout in layouts():
        mapping = _match(layout, header)
        if not _readable(mapping):
            continue
        score = len(header) - len(mapping.unknown)
        if score > best_score:
            best, best_score = mapping, score
    return best


def refuse(header: Sequence[str]) -> InvalidInput:
    """The error for a header no layout reads: the closest layout and what it lacks.

    Raises nothing: the error is returned for the caller to raise.
    """
    closest = max((_match(layout, header) for layout in layouts()), key=lambda m: len(header) - len(m.unknown))
    missing = [_column_for(closest.layout, f) for f in closest.layout.required if f not in closest.positions]
    if closest.layout.required_any and not any(f in closest.positions for f in closest.layout.required_any):
        missing.append(" / ".join(_column_for(closest.layout, f) for f in closest.layout.required_any))
    if not _has_identifier(closest):
        missing.append("统一社会信用代码 / 证件号码")
    return InvalidInput.for_field(
        "file",
        f"无法识别文件格式：最接近「{closest.layout.name}」，缺少列 {'、'.join(missing)} "
        f"(unknown layout: closest is {closest.layout.id}, missing columns {', '.join(missing)})",
    )


def _column_for(layout: Layout, field: str) -> str:
    return next((name for name, f in layout.columns.items() if f == field), field)
