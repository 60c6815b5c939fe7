"""The columnar loader: the row rules (:mod:`nodes.ingest.rules`) over a whole batch.

A batch is a polars frame holding one text column per field and the rows' line numbers.
Cleaning and the cross-field checks are column expressions; what needs a Python rule
(a date form, an authority's domain, an unusual identifier) is decided once per
distinct value, by the very functions the row rules use; the common valid credit code
is checked in columns (GB 32100 weights and mod 31). The checks take the row rules'
order, so a row gets the same first reason either way — a property test holds the two
to the same records and rejects on generated files.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

import numpy as np
import polars as pl
import polars_hash as plh

from credit.catalogue import Scope
from credit.identifiers import Subject, SubjectKind, ascii_rows, resident_id_rows_valid, uscc_rows_valid
from credit.rules import Procedure, RecordStatus
from nodes.ingest.rules import (
    CODE_FIELDS,
    FIELD_ZH,
    FUTURE,
    MAX_LEN,
    NO_IDENTITY,
    ORGANISATION,
    PERSON,
    PUBLICITY_BEFORE,
    REGISTER_FIELD_ZH,
    REGISTER_MAX_LEN,
    REGISTER_TEXT_FIELDS,
    REMOVED_BEFORE,
    REQUIRED,
    RESIDENT_ID_TYPES,
    SIMPLIFIED_MARK,
    SOLE_TRADER,
    SUBJECT_TYPES,
    TEXT_FIELDS,
    RegisterRules,
    RowRules,
    describe,
    merge_decisions,
)
from nodes.ingest.values import EMPTY_MARKERS, SPACE_CHARS, RowError, clean_code
from nodes.loader import FRAME_COLUMNS
from nodes.records import RecordDraft, make_draft
from nodes.registers import REGISTER_COLUMNS

LINE = "__line"
# Storage columns of a checked row, in :data:`nodes.store.Prepared` order after the two ids.
STORED = (
    "subject_id", "subject_kind", "subject_name", "domain", "scope", "decision_no", "authority", "decided_on",
    "category", "content", "procedure", "status", "publicity_until", "removed_on",
)  # fmt: skip
FOOTER_WORDS = ("合计", "总计", "小计", "制表", "填表", "填报", "审核", "备注", "说明", "注：", "注:", "数据截至")
_ERROR = "__error"
_CACHE = 200_000  # distinct values remembered across batches, per rule
_EMPTY = sorted(EMPTY_MARKERS)


@dataclass
class Tally:
    """What a load counts besides records: rows skipped, rows joined into their decision's
    record, records outside the catalogue, warnings, authorities that map to no domain."""

    blank: int = 0
    footer: int = 0
    merged: int = 0
    not_reportable: int = 0
    warnings: list[str] = field(default_factory=list)
    unmapped: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.blank += other.blank
        self.footer += other.footer
        self.merged += other.merged
        self.not_reportable += other.not_reportable
        self.warnings.extend(other.warnings)
        self.unmapped.update(other.unmapped)


@dataclass
class Checked(Tally):
    """What became of one batch."""

    frame: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={**dict.fromkeys(FRAME_COLUMNS, pl.String), "joinable": pl.Boolean})
    )
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # line, reason, row


def _by_value(column: pl.Series, fn: Callable[[Any], Any], cache: dict[Any, Any] | None = None) -> dict[Any, Any]:
    """``fn`` of each distinct value of ``column``: a RowError answers as itself. With
    ``cache``, values seen in earlier batches are not decided again."""
    out: dict[Any, Any] = {}
    for value in column.unique().to_list():
        if cache is not None and value in cache:
            out[value] = cache[value]
            continue
        try:
            out[value] = fn(value)
        except RowError as exc:
            out[value] = exc
        if cache is not None:
            if len(cache) >= _CACHE:
                cache.clear()
            cache[value] = out[value]
    return out


def _rows18(values: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The values of 18 single-byte characters: where they are, and their bytes one row each."""
    fixed = (values.str.len_bytes() == 18) & (values.str.len_chars() == 18)
    where = np.flatnonzero(fixed.to_numpy())
    if not where.size:
        return where, np.zeros((0, 18), dtype=np.uint8)
    return where, ascii_rows(values.gather(where).to_list())


def valid_uscc(codes: pl.Series) -> pl.Series:
    """Which codes are valid credit codes whose first 17 characters are not all digits
    (an all-digit value may be an ID number: the row rules decide those), by
    :func:`credit.identifiers.uscc_rows_valid` over an array of the codes' bytes.

    Raises nothing.
    """
    ok = np.zeros(codes.len(), dtype=bool)
    where, chars = _rows18(codes)
    if where.size:
        ok[where] = uscc_rows_valid(chars)
    return pl.Series(ok)


def valid_resident_id(numbers: pl.Series, today: date) -> pl.Series:
    """Which numbers are valid resident ID numbers (GB 11643: 17 digits and a check
    character, a province prefix, a real birth date from 1900 to ``today``), as
    :func:`credit.identifiers.resident_id_problems` finds none, by
    :func:`credit.identifiers.resident_id_rows_valid` over an array of bytes.

    Raises nothing.
    """
    ok = np.zeros(numbers.len(), dtype=bool)
    where, chars = _rows18(numbers)
    if where.size:
        ok[where] = resident_id_rows_valid(chars, today)
    return pl.Series(ok)


def _clean_batch(
    frame: pl.DataFrame,
    out: Tally,
    *,
    fields: Sequence[str],
    codes: Sequence[str],
    first_cell: str | None,
    footer_cells: Sequence[str],
    code_footer: str | None = None,
) -> pl.DataFrame:
    """A batch as its checks read it: the line numbers, the text ``fields`` cleaned
    (spaces stripped, the empty markers emptied, an absent field empty), each of ``codes``
    as given (``{code}__raw``) and then cleaned (``{code}``), and ``first_cell`` stripped
    (``__first``). Blank lines and footers (合计, 制表…) are left out and counted in
    ``out``, never rejected: a footer opens one of ``footer_cells`` or the first cell, on
    a line with no code, or, with ``code_footer``, stands in that code's cell.

    Raises nothing.
    """
    present = set(frame.columns)
    empty = pl.lit("")

    def cleaned(name: str) -> pl.Expr:
        text = pl.col(name).str.strip_chars(SPACE_CHARS)
        return pl.when(text.is_in(_EMPTY)).then(empty).otherwise(text)

    clean = [(cleaned(f) if f in present else empty).alias(f) for f in fields]
    raw = [(pl.col(f) if f in present else empty).alias(f"{f}__raw") for f in codes]
    first = [pl.col(first_cell).str.strip_chars(SPACE_CHARS).alias("__first")] if first_cell else []
    df = frame.select(pl.col(LINE), *clean, *raw, *first)

    words = f"^({'|'.join(FOOTER_WORDS)})"
    no_code = pl.all_horizontal([pl.col(f"{f}__raw").str.strip_chars(SPACE_CHARS) == "" for f in codes])
    cells = [pl.col(c) for c in footer_cells]
    # A blank or footer line names no subject: only lines without a code are looked at, and
    # with code_footer those whose code cell opens with a footer's words.
    looked_at = no_code
    if code_footer:
        cells.append(pl.col(f"{code_footer}__raw"))
        looked_at = no_code | pl.col(f"{code_footer}__raw").str.contains(words)
    if first_cell:
        cells.append(pl.col("__first"))
    bare = df.filter(looked_at)
    if bare.height:
        blank = pl.all_horizontal([pl.col(f) == "" for f in fields]) & no_code
        footer = pl.any_horizontal([c.str.contains(words) for c in cells]) & ~blank
        marks = bare.select(LINE, blank.alias("blank"), footer.alias("footer"))
        out.blank = int(marks["blank"].sum())
        out.footer = int(marks["footer"].sum())
        skipped = marks.filter(pl.col("blank") | pl.col("footer"))[LINE]
        if skipped.len():
            df = df.filter(~pl.col(LINE).is_in(skipped.implode()))
    if df.height == 0:
        return df

    # Codes: the common clean form passes as it is; the rest through the row rules' cleaner.
    for f in codes:
        column = df[f"{f}__raw"]
        odd = column.filter(~column.str.contains(r"^[0-9A-Z]{18}$") & (column != ""))
        mapping = {v: clean_code(v) for v in odd.unique().to_list()}
        df = df.with_columns(pl.col(f"{f}__raw").replace(mapping).alias(f))
    return df


class ColumnarRules:
    """The row rules applied to batches; caches live as long as the loader."""

    def __init__(self, rules: RowRules) -> None:
        self.rules = rules
        self._dates: dict[str, dict[Any, Any]] = {}

    def check(self, frame: pl.DataFrame, *, first_cell: str | None = None) -> Checked:
        """Check one batch: its records ready to store, its rejects, what was skipped.

        ``frame`` has a text column per field it carries (absent fields read as empty)
        and the line numbers in ``__line``; ``first_cell`` names a column holding each
        row's first cell as published, for recognising footer lines.

        Raises nothing: a bad row is a reject.
        """
        out = Checked()
        rules = self.rules
        df = _clean_batch(
            frame,
            out,
            fields=TEXT_FIELDS,
            codes=CODE_FIELDS,
            first_cell=first_cell,
            footer_cells=("subject_name", "decision_no"),
        )
        if df.height == 0:
            return out

        errors: list[pl.Expr] = []
        for name in REQUIRED:
            errors.append(
                pl.when(pl.col(name) == "").then(
                    pl.lit(f"缺少必填字段 {FIELD_ZH[name]} (required field {name} is empty)")
                )
            )
        for name, limit in MAX_LEN.items():
            errors.append(
                pl.when(pl.col(name).str.len_chars() > limit).then(
                    pl.lit(f"{FIELD_ZH[name]} 超过 {limit} 字符 ({name} longer than {limit} characters)")
                )
            )
        odd_ids = df["record_id"].filter(~df["record_id"].str.contains(r"^[\x20-\x7e]*$"))
        unprintable = [v for v in odd_ids.unique().to_list() if not v.isprintable()]
        errors.append(
            pl.when(pl.col("record_id").is_in(unprintable)).then(
                pl.lit("记录编号含控制字符 (record id contains control characters)")
            )
        )

        # Subjects: a valid credit code of an organisation, a sole trader or an untyped
        # row is an enterprise; every other combination goes to the row rules once.
        types = df["subject_type"].unique().to_list()
        code_types = [t for t in types if SUBJECT_TYPES.get(t) in ("", ORGANISATION, SOLE_TRADER)]
        person_types = [t for t in types if SUBJECT_TYPES.get(t) == PERSON]
        number = pl.when(pl.col("resident_id") != "").then(pl.col("resident_id")).otherwise(pl.col("uscc"))
        df = df.with_columns(number.alias("__pid"))
        company = pl.col("subject_type").is_in(code_types) & valid_uscc(df["uscc"])
        person = (
            pl.col("subject_type").is_in(person_types)
            & pl.col("id_type").is_in(sorted(RESIDENT_ID_TYPES))
            & valid_resident_id(df["__pid"], rules.today)
        )
        df = df.with_columns(
            (company | person).alias("__fast"),
            pl.when(company).then(pl.col("uscc")).otherwise(pl.col("__pid")).alias("__fid"),
            pl.when(company).then(pl.lit("enterprise")).otherwise(pl.lit("person")).alias("__fkind"),
        )
        slow_keys = ("subject_type", "uscc", "resident_id", "id_type", "legal_rep_id", "legal_rep_id_type", "reg_no",
                     "org_code")  # fmt: skip
        slow = df.filter(~pl.col("__fast")).select(slow_keys).unique()
        subjects: dict[tuple[str, ...], Subject | RowError] = {}
        for key in slow.iter_rows():
            try:
                subjects[key] = rules.subject_of(*key)
            except RowError as exc:
                subjects[key] = exc
        if subjects:
            lookup = pl.DataFrame(
                {
                    **{k: [key[i] for key in subjects] for i, k in enumerate(slow_keys)},
                    "__sid": [s.id if isinstance(s, Subject) else "" for s in subjects.values()],
                    "__skind": [s.kind.value if isinstance(s, Subject) else "" for s in subjects.values()],
                    "__serr": [str(s) if isinstance(s, RowError) else None for s in subjects.values()],
                },
                schema={
                    **dict.fromkeys(slow_keys, pl.String),
                    "__sid": pl.String,
                    "__skind": pl.String,
                    "__serr": pl.String,
                },
            )
            df = df.join(lookup, on=list(slow_keys), how="left", nulls_equal=True, maintain_order="left")
        else:
            df = df.with_columns(
                pl.lit(None, pl.String).alias("__sid"),
                pl.lit(None, pl.String).alias("__skind"),
                pl.lit(None, pl.String).alias("__serr"),
            )
        df = df.with_columns(
            pl.when(pl.col("__fast")).then(pl.col("__fid")).otherwise(pl.col("__sid")).alias("__sid"),
            pl.when(pl.col("__fast")).then(pl.col("__fkind")).otherwise(pl.col("__skind")).alias("__skind"),
        )
        errors.append(pl.when(~pl.col("__fast")).then(pl.col("__serr")))

        # Scope, domain, dates, procedure, status: once per distinct value.
        scopes = _by_value(df["scope"], rules.scope_of)
        df = df.with_columns(
            pl.col("scope").replace_strict(_ok(scopes, lambda s: s.value), default=None).alias("__scope")
        )
        errors.append(pl.col("scope").replace_strict(_err(scopes), default=None, return_dtype=pl.String))
        pairs = df.select("domain", "authority").unique()
        domains: dict[tuple[str, str], Any] = {}
        for given, authority in pairs.iter_rows():
            try:
                domains[(given, authority)] = rules.domain_of(given, authority)
            except RowError as exc:
                domains[(given, authority)] = exc
        lookup = pl.DataFrame(
            {
                "domain": [k[0] for k in domains],
                "authority": [k[1] for k in domains],
                "__domain": [v if isinstance(v, str) else None for v in domains.values()],
                "__derr": [str(v) if isinstance(v, RowError) else None for v in domains.values()],
                "__unmapped": [v.authority if isinstance(v, RowError) else None for v in domains.values()],
            },
            schema={
                "domain": pl.String,
                "authority": pl.String,
                "__domain": pl.String,
                "__derr": pl.String,
                "__unmapped": pl.String,
            },
        )
        df = df.join(lookup, on=["domain", "authority"], how="left", maintain_order="left")
        errors.append(pl.col("__derr"))

        date_errors: dict[str, pl.Expr] = {}
        for name, what, open_ended in (
            ("decided_on", "处罚决定日期", False),
            ("publicity_until", "公示截止期", True),
            ("removed_on", "移出日期", True),
        ):
            cache = self._dates.setdefault(name, {})
            parsed = _by_value(df[name], partial(rules.date_of, what=what, open_ended=open_ended), cache)
            iso = _ok(parsed, lambda d: d.isoformat() if d else None)
            df = df.with_columns(
                pl.col(name).replace_strict(iso, default=None, return_dtype=pl.String).alias(f"__{name}")
            )
            date_errors[name] = pl.col(name).replace_strict(_err(parsed), default=None, return_dtype=pl.String)
        today = rules.today.isoformat()
        errors.append(date_errors["decided_on"])
        decided = pl.col("__decided_on")
        errors.append(pl.when(decided > today).then(pl.format(FUTURE, decided)))
        errors.append(date_errors["publicity_until"])
        errors.append(pl.when(pl.col("__publicity_until") < decided).then(pl.lit(PUBLICITY_BEFORE)))
        errors.append(date_errors["removed_on"])
        errors.append(pl.when(pl.col("__removed_on") < decided).then(pl.lit(REMOVED_BEFORE)))

        procs = _by_value(
            df["procedure"].filter(df["procedure"] != ""),
            lambda v: rules.procedure_of(v, "", Scope.ADMINISTRATIVE_PENALTY),
        )
        inferred = (
            pl.when(pl.col("__scope") != Scope.ADMINISTRATIVE_PENALTY.value)
            .then(pl.lit(Procedure.NOT_APPLICABLE.value))
            .when(pl.col("decision_no").str.contains(SIMPLIFIED_MARK.pattern))
            .then(pl.lit(Procedure.SIMPLIFIED.value))
            .otherwise(pl.lit(Procedure.GENERAL.value))
        )
        df = df.with_columns(
            pl.when(pl.col("procedure") == "")
            .then(inferred)
            .otherwise(
                pl.col("procedure").replace_strict(_ok(procs, lambda p: p.value), default=None, return_dtype=pl.String)
            )
            .alias("__procedure")
        )
        errors.append(pl.col("procedure").replace_strict(_err(procs), default=None, return_dtype=pl.String))
        statuses = _by_value(df["status"], rules.status_of)
        df = df.with_columns(
            pl.col("status")
            .replace_strict(_ok(statuses, lambda s: s.value), default=None, return_dtype=pl.String)
            .alias("__status")
        )
        errors.append(pl.col("status").replace_strict(_err(statuses), default=None, return_dtype=pl.String))

        df = df.with_columns(pl.coalesce(errors).alias(_ERROR))
        bad = df.filter(pl.col(_ERROR).is_not_null())
        if bad.height:
            shown = [
                f for f in (*TEXT_FIELDS[:4], "uscc__raw", "resident_id__raw", *TEXT_FIELDS[4:]) if f in bad.columns
            ]
            raws = bad.select(pl.concat_str([pl.col(f) for f in shown], separator=",")).to_series().to_list()
            out.rejects = list(zip(bad[LINE].to_list(), bad[_ERROR].to_list(), raws, strict=True))
            out.unmapped.update(v for v in bad["__unmapped"].to_list() if v)
        good = df.filter(pl.col(_ERROR).is_null())
        if good.height == 0:
            return out

        # Category and content: only rows that mention 不予 or lack content need the rule.
        needs = (pl.col("content") == "") | pl.col("content").str.contains("不予")
        special = good.filter(needs).select("category", "content", "fine", "confiscated", "reason").unique()
        if special.height:
            described = [describe(*key) for key in special.iter_rows()]
            special = special.with_columns(
                pl.Series("__category", [d[0] for d in described], dtype=pl.String),
                pl.Series("__content", [d[1] for d in described], dtype=pl.String),
            )
            good = good.join(special, on=["category", "content", "fine", "confiscated", "reason"], how="left",
                             maintain_order="left")  # fmt: skip
            good = good.with_columns(
                pl.coalesce("__category", "category").alias("category"),
                pl.coalesce("__content", "content").alias("content"),
            )
        good = good.with_columns(
            pl.col("__sid").alias("subject_id"),
            pl.col("__skind").alias("subject_kind"),
            pl.col("__domain").alias("domain"),
            pl.col("__scope").alias("scope"),
            pl.col("__decided_on").alias("decided_on"),
            pl.col("__publicity_until").alias("publicity_until"),
            pl.col("__removed_on").alias("removed_on"),
            pl.col("__procedure").alias("procedure"),
            pl.col("__status").alias("status"),
        )
        # Record ids (the row rules' record_key) and content hashes (make_draft's), over
        # texts joined in columns.
        id_text = (
            pl.when(pl.col("decision_no") != "")
            .then(pl.concat_str([pl.col("scope"), pl.col("decision_no"), pl.col("subject_id")], separator="\x1f"))
            .otherwise(
                pl.concat_str(
                    [
                        pl.col("scope"),
                        pl.lit(NO_IDENTITY),
                        pl.col("subject_id"),
                        pl.col("authority"),
                        pl.col("decided_on"),
                    ],
                    separator="\x1f",
                )
            )
        )
        blake = hashlib.blake2b
        keys = good.select(id_text.cast(pl.Binary)).to_series().to_list()
        derived = pl.Series([blake(k, digest_size=12).hexdigest() for k in keys], dtype=pl.String)
        given = good["record_id"] != ""
        good = good.with_columns(
            pl.when(given).then(pl.col("record_id")).otherwise(derived).alias("record_id"), given.alias("__given")
        )

        # Rows sharing a source record id (记录编号) are that record's history, stored as
        # versions; rows sharing a derived id are one decision, or two that share a number.
        dup = good["record_id"].is_duplicated() & ~given
        if dup.any():
            twins = good.filter(dup)
            good = good.filter(~dup)
            rows = twins.select("record_id", *STORED).iter_rows(named=True)
            merged = merge_decisions(zip(twins[LINE].to_list(), map(_draft, rows), strict=True))
            out.merged = merged.merged_rows
            out.warnings.extend(merged.split)
            joined = pl.DataFrame([_row_of(d) for d in merged.drafts], schema=["record_id", *STORED], orient="row")
            good = pl.concat(
                [
                    good.select("record_id", *STORED, "__given"),
                    joined.cast(pl.String).with_columns(pl.lit(False).alias("__given")),
                ]
            )
        # The content hash (make_draft's: SHA-256 over the readable fields joined by \x1f).
        hash_text = plh.concat_str([pl.col(c).fill_null("") for c in STORED], separator="\x1f")
        good = good.select(
            "record_id",
            hash_text.chash.sha2_256().alias("content_hash"),
            *STORED,
            (~pl.col("__given")).alias("joinable"),
        )
        covered = [f"{d}\x1f{k.value}\x1f{s.value}" for d, k, s in rules.covered]
        coverage = pl.concat_str([pl.col("domain"), pl.col("subject_kind"), pl.col("scope")], separator="\x1f")
        out.not_reportable = int(good.select((~coverage.is_in(covered)).sum()).item())
        out.frame = good
        return out


def _ok(mapping: dict[Any, Any], convert: Callable[[Any], Any]) -> dict[Any, Any]:
    return {k: convert(v) for k, v in mapping.items() if not isinstance(v, RowError)}


def _err(mapping: dict[Any, Any]) -> dict[Any, str]:
    return {k: str(v) for k, v in mapping.items() if isinstance(v, RowError)}


def _draft(row: dict[str, Any]) -> RecordDraft:
    return make_draft(
        record_id=row["record_id"],
        subject_id=row["subject_id"],
        subject_kind=SubjectKind(row["subject_kind"]),
        subject_name=row["subject_name"],
        domain=row["domain"],
        scope=Scope(row["scope"]),
        decision_no=row["decision_no"],
        authority=row["authority"],
        decided_on=date.fromisoformat(row["decided_on"]),
        category=row["category"],
        content=row["content"],
        procedure=Procedure(row["procedure"]),
        status=RecordStatus(row["status"]),
        publicity_until=date.fromisoformat(row["publicity_until"]) if row["publicity_until"] else None,
        removed_on=date.fromisoformat(row["removed_on"]) if row["removed_on"] else None,
    )


def _row_of(d: RecordDraft) -> tuple[Any, ...]:
    return (
        d.record_id, d.subject_id, d.subject_kind.value, d.subject_name, d.domain, d.scope.value, d.decision_no,
        d.authority, d.decided_on.isoformat(), d.category, d.content, d.procedure.value, d.status.value,
        d.publicity_until.isoformat() if d.publicity_until else None,
        d.removed_on.isoformat() if d.removed_on else None,
    )  # fmt: skip


@dataclass
class CheckedRegister(Tally):
    """What became of one batch of a register file: its entries (frames of
    :data:`nodes.registers.REGISTER_COLUMNS`), its rejects, what was skipped."""

    frame: pl.DataFrame = field(default_factory=pl.DataFrame)
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # line, reason, row


class RegisterColumns:
    """The register rules (:class:`nodes.ingest.rules.RegisterRules`) over batches: the
    common valid credit code is checked in columns, everything else once per distinct
    value; the first failing check is a row's reason, in this order: code, name, lengths,
    established date."""

    def __init__(self, rules: RegisterRules) -> None:
        self.rules = rules
        self._dates: dict[Any, Any] = {}

    def check(self, frame: pl.DataFrame, *, first_cell: str | None = None) -> CheckedRegister:
        """Check one batch (a text column per field, line numbers in ``__line``).

        Raises nothing: a bad row is a reject.
        """
        out = CheckedRegister()
        codes = ("uscc", "reg_no", "org_code")
        # A register often opens with the code column, so a footer may stand in it.
        df = _clean_batch(
            frame,
            out,
            fields=REGISTER_TEXT_FIELDS,
            codes=codes,
            first_cell=first_cell,
            footer_cells=("subject_name",),
            code_footer="uscc",
        )
        if df.height == 0:
            return out

        # The code: a valid credit code passes in columns; the rest by the rule, once each.
        fast = valid_uscc(df["uscc"])
        df = df.with_columns(fast.alias("__fast"))
        slow = df.filter(~pl.col("__fast")).select(codes).unique()
        decided: dict[tuple[str, ...], str | RowError] = {}
        for key in slow.iter_rows():
            try:
                decided[key] = self.rules.code_of(*key)
            except RowError as exc:
                decided[key] = exc
        lookup = pl.DataFrame(
            {
                **{k: [key[i] for key in decided] for i, k in enumerate(codes)},
                "__sid": [v if isinstance(v, str) else None for v in decided.values()],
                "__serr": [str(v) if isinstance(v, RowError) else None for v in decided.values()],
            },
            schema={**dict.fromkeys(codes, pl.String), "__sid": pl.String, "__serr": pl.String},
        )
        df = df.join(lookup, on=list(codes), how="left", nulls_equal=True, maintain_order="left")
        df = df.with_columns(pl.when(pl.col("__fast")).then(pl.col("uscc")).otherwise(pl.col("__sid")).alias("__sid"))

        errors: list[pl.Expr] = [pl.when(~pl.col("__fast")).then(pl.col("__serr"))]
        errors.append(
            pl.when(pl.col("subject_name") == "").then(
                pl.lit(f"缺少必填字段 {REGISTER_FIELD_ZH['subject_name']} (required field subject_name is empty)")
            )
        )
        for name, limit in REGISTER_MAX_LEN.items():
            errors.append(
                pl.when(pl.col(name).str.len_chars() > limit).then(
                    pl.lit(f"{REGISTER_FIELD_ZH[name]} 超过 {limit} 字符 ({name} longer than {limit} characters)")
                )
            )
        parsed = _by_value(df["established_on"], self.rules.established_of, self._dates)
        df = df.with_columns(
            pl.col("established_on")
            .replace_strict(_ok(parsed, lambda d: d.isoformat() if d else None), default=None, return_dtype=pl.String)
            .alias("__established")
        )
        errors.append(pl.col("established_on").replace_strict(_err(parsed), default=None, return_dtype=pl.String))
        df = df.with_columns(pl.coalesce(errors).alias(_ERROR))

        bad = df.filter(pl.col(_ERROR).is_not_null())
        if bad.height:
            shown = ["uscc__raw", *REGISTER_TEXT_FIELDS]
            raws = bad.select(pl.concat_str([pl.col(f) for f in shown], separator=",")).to_series().to_list()
            out.rejects = list(zip(bad[LINE].to_list(), bad[_ERROR].to_list(), raws, strict=True))
        good = df.filter(pl.col(_ERROR).is_null())
        out.frame = good.select(
            pl.col("__sid").alias("subject_id"),
            pl.col("subject_name").alias("name"),
            "legal_rep",
            "address",
            pl.col("registered_by").alias("authority"),
            pl.col("__established").alias("established_on"),
            pl.col("reg_status").alias("status"),
        )
        assert tuple(out.frame.columns) == REGISTER_COLUMNS
        return out
