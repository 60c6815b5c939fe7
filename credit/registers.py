"""Registers of market entities (市场主体登记信息): who a report's subject is.

Each region's node loads its region's register (name, legal representative, address,
registration authority, established date, status) and answers a query with the subject's
entry when it has one. The report takes the entry of the region the subject belongs to —
the administrative division in its identifier (:func:`home_region`) — and falls back to
any other region that knows it (:func:`find_registration`). When none does, the report
says so in words, naming the registers it could not look in; natural persons are not in
these registers at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from credit.identifiers import Subject, SubjectKind
from credit.regions import Region

# 登记状态 of an entity that moved its registration to another authority: the register
# it left keeps an entry, the one it moved to holds the current details.
MOVED_OUT = "迁出"

NOT_FOR_PERSONS = "自然人不在市场主体登记范围内，市场主体登记信息不含自然人"


@dataclass(frozen=True, slots=True)
class SubjectRegistration:
    """A subject's entry in one region's register of market entities."""

    subject_id: str  # 统一社会信用代码
    name: str  # 名称
    region: Region  # whose register holds the entry
    legal_rep: str = ""  # 法定代表人 / 负责人 / 经营者 / 执行事务合伙人
    address: str = ""  # 住所 / 经营场所
    authority: str = ""  # 登记机关
    established_on: date | None = None  # 成立日期
    status: str = ""  # 登记状态, as the register publishes it (存续, 在业, 吊销, 注销, 迁出…)


def division_of(subject: Subject) -> str:
    """The administrative division code (GB/T 2260) in a subject's identifier: characters
    3–8 of a unified social credit code, the first six digits of a resident ID number.

    Raises nothing.
    """
    return subject.id[:6] if subject.kind is SubjectKind.PERSON else subject.id[2:8]


def home_region(subject: Subject) -> Region | None:
    """The region of the federation the subject's identifier places it in (11… Beijing,
    12… Tianjin, 13… Hebei), or None for a subject from elsewhere.

    Raises nothing.
    """
    prefix = division_of(subject)[:2]
    return next((region for region in Region if region.division_prefix == prefix), None)


@dataclass(frozen=True, slots=True)
class RegisterFinding:
    """What the registers said about a report's subject.

    ``searched`` are the regions whose register was looked in (their node answered from
    its own register); ``unsearched`` those asked whose register could not be: the node
    did not answer, answered from a peer's replica (registers are not replicated), or
    holds no register yet.
    """

    kind: SubjectKind
    registration: SubjectRegistration | None
    home: Region | None
    searched: tuple[Region, ...] = ()
    unsearched: tuple[Region, ...] = ()

    @property
    def note(self) -> str:
        """In words, why the report shows no registration ("" when it shows one).

        Raises nothing.
        """
        if self.registration is not None:
            return ""
        if self.kind is SubjectKind.PERSON:
            return NOT_FOR_PERSONS
        if not self.searched:
            return "各地区市场主体登记信息均未能查询，未查到该主体的登记信息"
        if not self.unsearched:
            where = "三地" if len(self.searched) == len(Region) else _names(self.searched)
            return f"{where}市场主体登记信息中均未查到该主体"
        return f"{_names(self.searched)}市场主体登记信息中未查到该主体；{_names(self.unsearched)}的登记信息未能查询"


def _names(regions: Iterable[Region]) -> str:
    return "、".join(region.name_zh for region in regions)


def find_registration(
    subject: Subject, found: Mapping[Region, SubjectRegistration | None], *, asked: Iterable[Region]
) -> RegisterFinding:
    """The registration a report shows: the entry of the subject's home region, else of
    the first other region (in federation order) that knows the subject.

    ``found`` holds, for each region whose register was looked in, its entry or None;
    ``asked`` are all the regions the report asked. A home entry whose status is 迁出
    (moved out) gives way to another region's entry that is not: that register holds
    the entity now. A natural person is never looked for.

    Raises nothing.
    """
    order = list(Region)
    asked_in_order = sorted(set(asked) | set(found), key=order.index)
    searched = tuple(r for r in asked_in_order if r in found)
    unsearched = tuple(r for r in asked_in_order if r not in found)
    home = home_region(subject)
    if subject.kind is SubjectKind.PERSON:
        return RegisterFinding(subject.kind, None, home, searched, unsearched)
    known = [entry for region in searched if (entry := found[region]) is not None]
    # Home first, the others in federation order.
    known.sort(key=lambda entry: (entry.region is not home, order.index(entry.region)))
    current = [entry for entry in known if MOVED_OUT not in entry.status]
    chosen = current[0] if current else (known[0] if known else None)
    return RegisterFinding(subject.kind, chosen, home, searched, unsearched)
