"""Domains (领域), data scopes (数据范围) and each region's catalogue of what it covers.

A catalogue says, for one region, which domains it reports on for which kind of subject
and in which scopes. Catalogues differ between regions; a domain × scope that a region's
catalogue does not list is *not covered* there, which is a different answer from
*no record*.
"""

from __future__ import annotations

import dataclasses
import enum
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

from credit.authorities import normalise_name
from credit.errors import UnknownName
from credit.identifiers import SubjectKind
from credit.regions import Region


class Scope(enum.StrEnum):
    """A data scope: what kind of record it is."""

    __hash__ = str.__hash__  # agrees with str equality, and hashes in C

    ADMINISTRATIVE_PENALTY = "administrative_penalty"  # 行政处罚
    SERIOUS_DISHONESTY_LIST = "serious_dishonesty_list"  # 严重失信主体名单
    ABNORMAL_OPERATIONS_LIST = "abnormal_operations_list"  # 经营异常名录
    SERIOUS_ILLEGAL_DISHONESTY_LIST = "serious_illegal_dishonesty_list"  # 严重违法失信名单
    FATAL_ACCIDENT_LIST = "fatal_accident_list"  # 生产安全亡人事故名单
    ADMINISTRATIVE_COERCION = "administrative_coercion"  # 行政强制
    CRIMINAL_JUDGMENT = "criminal_judgment"  # 刑事裁判

    @property
    def name_zh(self) -> str:
        return _SCOPE_NAMES[self]

    @property
    def is_list(self) -> bool:
        """List entries count while in force; the others by their decision date."""
        return self in _LIST_SCOPES

    @classmethod
    def parse(cls, value: str, *, field: str = "scope") -> Scope:
        """The scope named by its code or Chinese name.

        Raises:
            UnknownName: no such scope.
        """
        key = value.strip()
        for scope in cls:
            if key in (scope.value, scope.name_zh):
                return scope
        raise UnknownName.for_field(field, f"未知数据范围 '{value}' (unknown scope '{value}')")


_SCOPE_NAMES = {
    Scope.ADMINISTRATIVE_PENALTY: "行政处罚",
    Scope.SERIOUS_DISHONESTY_LIST: "严重失信主体名单",
    Scope.ABNORMAL_OPERATIONS_LIST: "经营异常名录",
    Scope.SERIOUS_ILLEGAL_DISHONESTY_LIST: "严重违法失信名单",
    Scope.FATAL_ACCIDENT_LIST: "生产安全亡人事故名单",
    Scope.ADMINISTRATIVE_COERCION: "行政强制",
    Scope.CRIMINAL_JUDGMENT: "刑事裁判",
}
_LIST_SCOPES = frozenset(
    {
        Scope.SERIOUS_DISHONESTY_LIST,
        Scope.ABNORMAL_OPERATIONS_LIST,
        Scope.SERIOUS_ILLEGAL_DISHONESTY_LIST,
        Scope.FATAL_ACCIDENT_LIST,
    }
)


@dataclass(frozen=True, slots=True)
class Domain:
    """A 领域: a field of administration whose authorities share records.

    ``aliases`` are other names people write for it (市场监督管理 for 市场监管), kept
    normalised. They are lookup data, not part of what the domain is: two domains with
    the same code and name are equal whatever aliases they carry.
    """

    code: str
    name: str
    aliases: tuple[str, ...] = dataclasses.field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One domain a region covers for one kind of subject, in the listed scopes."""

    domain: Domain
    subject: SubjectKind
    scopes: tuple[Scope, ...]
    authorities: tuple[str, ...]


@dataclass(frozen=True, eq=False)  # identity: compared and cached as one object
class Catalogue:
    """What one region reports on. ``version`` changes whenever the entries do."""

    region: Region
    version: str
    entries: tuple[CatalogueEntry, ...]

    def __post_init__(self) -> None:
        index = {(e.domain.code, e.subject): e for e in self.entries}
        object.__setattr__(self, "_index", index)

    def entry(self, domain: str, subject: SubjectKind) -> CatalogueEntry | None:
        """The entry for a domain and subject kind, or None when not covered."""
        index: dict[tuple[str, SubjectKind], CatalogueEntry] = self._index  # type: ignore[attr-defined]
        return index.get((domain, subject))

    def covers(self, domain: str, subject: SubjectKind, scope: Scope) -> bool:
        entry = self.entry(domain, subject)
        return entry is not None and scope in entry.scopes

    def for_subject(self, subject: SubjectKind) -> Iterator[CatalogueEntry]:
        return (e for e in self.entries if e.subject is subject)


def _load_toml(*parts: str) -> dict[str, object]:
    data = resources.files("credit").joinpath("data", *parts).read_text(encoding="utf-8")
    return tomllib.loads(data)


@cache
def domains() -> dict[str, Domain]:
    """Every known domain by code, in report order.

    Raises:
        KeyError: the packaged data is malformed (a packaging fault).
    """
    raw = _load_toml("domains.toml")["domain"]
    assert isinstance(raw, list)
    return {
        d["code"]: Domain(d["code"], d["name"], tuple(normalise_name(a) for a in d.get("aliases", ()))) for d in raw
    }


def domain(code: str, *, field: str = "domain") -> Domain:
    """The domain with this code, Chinese name or alias (生态环境保护 for 生态环境).

    Compared after :func:`credit.authorities.normalise_name`: whitespace anywhere and
    full-width characters do not matter.

    Raises:
        UnknownName: no such domain.
    """
    known = domains()
    if code in known:
        return known[code]
    key = normalise_name(code)
    if key in known:
        return known[key]
    for d in known.values():
        if key == d.name or key in d.aliases:
            return d
    raise UnknownName.for_field(field, f"未知领域 '{code}' (unknown domain '{code}')")


def build_catalogue(region: Region, version: str, entries: Iterable[dict[str, object]]) -> Catalogue:
    """A catalogue from its data form (as in the packaged TOML files).

    Raises:
        UnknownName: an unknown domain, subject kind or scope.
    """
    built = []
    for raw in entries:
        try:
            kind = SubjectKind(str(raw["subject"]))
        except ValueError:
            raise UnknownName.for_field("subject", f"unknown subject kind {raw['subject']!r}") from None
        scopes = raw["scopes"]
        authorities = raw.get("authorities", [])
        assert isinstance(scopes, list) and isinstance(authorities, list)
        built.append(
            CatalogueEntry(
                domain=domain(str(raw["domain"])),
                subject=kind,
                scopes=tuple(Scope.parse(s) for s in scopes),
                authorities=tuple(str(a) for a in authorities),
            )
        )
    return Catalogue(region, version, tuple(built))


@cache
def catalogue(region: Region) -> Catalogue:
    """The packaged catalogue of a region.

    Raises:
        UnknownName, KeyError: the packaged data is malformed (a packaging fault).
    """
    raw = _load_toml("catalogues", f"{region.value}.toml")
    entries = raw["entry"]
    assert isinstance(entries, list)
    return build_catalogue(region, str(raw["version"]), entries)
