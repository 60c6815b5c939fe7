"""Deterministic synthetic records for demos, tests and benchmarks, at any scale.

Subject ``i`` of a region always has the same identifier (valid codes with the region's
real division codes, built from ``i`` so that millions stay unique without a lookup),
and a seeded random stream decides its records, so the same arguments always produce
the same data. Most subjects have no record; the rest get every kind the reporting rules
must handle: counted penalties, simplified-procedure penalties, decisions not to
penalise, penalties later repaired (two versions), revoked ones, list entries in force
and expired, and records just outside the window.

A few named demo subjects are the same in every region, so that a three-region report
about them has something to show.

:func:`registrations` makes the region's register of market entities to go with them:
an entry for every enterprise of the region (the demo enterprises in their home region,
clean ones included), except one in fifty, which no register knows. Persons are in no
register.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from credit.catalogue import Catalogue, CatalogueEntry, Scope, catalogue
from credit.demo import DEMO_SUBJECTS, DemoSubject
from credit.identifiers import Subject, SubjectKind, make_resident_id, make_uscc
from credit.regions import Region
from credit.registers import SubjectRegistration, home_region
from credit.rules import Procedure, RecordStatus
from nodes.records import RecordDraft, make_draft

_ORG_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def _org_check(body8: str) -> str:
    # GB 11714 organisation code check character.
    total = sum((int(ch) if ch.isdigit() else ord(ch) - 55) * w for ch, w in zip(body8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


@dataclass(frozen=True, slots=True)
class SyntheticSubject:
    id: str
    kind: SubjectKind
    name: str


_WORDS = list("华宏恒泰瑞鑫盛达通远博创新兴安康智诚信和中金海德丰汇嘉利")
_TRADES = [
    *("科技", "建设", "贸易", "物流", "食品", "医药", "环保", "能源"),
    *("机械", "电子", "餐饮", "文化", "置业", "化工", "纺织", "建材"),
]
_SURNAMES = list("王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗")
_CITY = {Region.BEIJING: "北京", Region.TIANJIN: "天津", Region.HEBEI: "河北"}


def synthetic_subject(region: Region, i: int) -> SyntheticSubject:
    """Subject ``i`` of a region: one in ten is a person."""
    divisions = region.divisions
    division = divisions[i % len(divisions)]
    if i % 10 == 9:
        born = date(1950, 1, 1) + timedelta(days=(i * 7919) % 20000)
        body = f"{division}{born:%Y%m%d}{i % 1000:03d}"
        name = f"{_SURNAMES[i % len(_SURNAMES)]}*{_WORDS[(i // 7) % len(_WORDS)]}"
        return SyntheticSubject(make_resident_id(body), SubjectKind.PERSON, name)
    # Organisation code body: ``i`` scrambled by an odd multiplier, in base 31.
    n = (i * 2_654_435_761 + 12345) % (31**8)
    chars = []
    for _ in range(8):
        n, r = divmod(n, 31)
        chars.append(_ORG_ALPHABET[r])
    body8 = "".join(chars)
    code = make_uscc(f"91{division}{body8}{_org_check(body8)}")
    name = f"{_CITY[region]}{_WORDS[i % 28]}{_WORDS[(i // 28) % 28]}{_TRADES[(i // 784) % 16]}有限公司"
    return SyntheticSubject(code, SubjectKind.ENTERPRISE, name)


class _Maker:
    def __init__(self, region: Region, cat: Catalogue, rng: random.Random, today: date) -> None:
        self.region = region
        self.rng = rng
        self.today = today
        # Roughly where a 3-year window made today starts and ends.
        self.cutoff = today - timedelta(days=10)
        self.start = (
            self.cutoff.replace(year=self.cutoff.year - 3)
            if (self.cutoff.month, self.cutoff.day) != (2, 29)
            else self.cutoff - timedelta(days=3 * 365)
        )
        self.by_scope: dict[tuple[SubjectKind, Scope], list[CatalogueEntry]] = {}
        for entry in cat.entries:
            for scope in entry.scopes:
                self.by_scope.setdefault((entry.subject, scope), []).append(entry)
        self.serial = 0

    def entry(self, kind: SubjectKind, scope: Scope) -> CatalogueEntry | None:
        options = self.by_scope.get((kind, scope))
        return self.rng.choice(options) if options else None

    def day_between(self, first: date, last: date) -> date:
        return first + timedelta(days=self.rng.randrange(max(1, (last - first).days + 1)))

    def penalty(
        self,
        subject: SyntheticSubject,
        entry: CatalogueEntry,
        decided_on: date,
        *,
        scope: Scope = Scope.ADMINISTRATIVE_PENALTY,
        procedure: Procedure = Procedure.GENERAL,
        category: str = "罚款",
        status: RecordStatus = RecordStatus.IN_FORCE,
        removed_on: date | None = None,
        record_id: str = "",
    ) -> RecordDraft:
        self.serial += 1
        authority = next((a for a in entry.authorities if not a.startswith("各")), entry.authorities[0])
        short = _CITY[self.region][0]
        decision_no = f"{short}{entry.domain.name[:2]}罚〔{decided_on.year}〕{self.serial}号"
        is_list = scope.is_list
        content = (
            f"因{entry.domain.name}领域违法违规行为列入{scope.name_zh}"
            if is_list
            else f"{category}人民币{self.rng.randrange(1, 200) * 500}元"
            if category == "罚款"
            else category
        )
        return make_draft(
            record_id=record_id,
            subject_id=subject.id,
            subject_kind=subject.kind,
            subject_name=subject.name,
            domain=entry.domain.code,
            scope=scope,
            decision_no=decision_no,
            authority=authority,
            decided_on=decided_on,
            category="" if is_list else category,
            content=content,
            procedure=Procedure.NOT_APPLICABLE if scope is not Scope.ADMINISTRATIVE_PENALTY else procedure,
            status=status,
            publicity_until=None if is_list else decided_on + timedelta(days=365 * (3 if category != "警告" else 1)),
            removed_on=removed_on,
        )

    def records_for(self, subject: SyntheticSubject) -> list[RecordDraft]:
        rng = self.rng
        penalty_entry = self.entry(subject.kind, Scope.ADMINISTRATIVE_PENALTY)
        if penalty_entry is None:
            return []
        drafts: list[RecordDraft] = []
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
            kind = rng.random()
            entry = self.entry(subject.kind, Scope.ADMINISTRATIVE_PENALTY) or penalty_entry
            in_window = self.day_between(self.start + timedelta(days=5), self.cutoff - timedelta(days=1))
            if kind < 0.35:
                drafts.append(
                    self.penalty(subject, entry, in_window, category=rng.choice(("罚款", "警告", "没收违法所得")))
                )
            elif kind < 0.50:
                drafts.append(self.penalty(subject, entry, in_window, procedure=Procedure.SIMPLIFIED, category="警告"))
            elif kind < 0.58:
                drafts.append(self.penalty(subject, entry, in_window, category="不予行政处罚"))
            elif kind < 0.66:
                first = self.penalty(subject, entry, in_window)
                drafts.append(first)
                repaired = self.penalty(
                    subject, entry, in_window, status=RecordStatus.REPAIRED, record_id=first.record_id
                )
                drafts.append(repaired)
            elif kind < 0.70:
                drafts.append(self.penalty(subject, entry, in_window, status=RecordStatus.REVOKED))
            elif kind < 0.82:
                old = self.day_between(self.start - timedelta(days=3 * 365), self.start - timedelta(days=30))
                drafts.append(self.penalty(subject, entry, old))
            elif kind < 0.86:
                edge = self.start - timedelta(days=rng.randrange(1, 20))
                drafts.append(self.penalty(subject, entry, edge))
            else:
                scope = rng.choice(
                    (
                        Scope.ABNORMAL_OPERATIONS_LIST,
                        Scope.SERIOUS_DISHONESTY_LIST,
                        Scope.SERIOUS_ILLEGAL_DISHONESTY_LIST,
                    )
                )
                list_entry = self.entry(subject.kind, scope)
                if list_entry is None:
                    continue
                if kind < 0.93:
                    listed = self.day_between(self.start, self.cutoff - timedelta(days=1))
                    drafts.append(self.penalty(subject, list_entry, listed, scope=scope))
                else:
                    listed = self.day_between(self.start - timedelta(days=4 * 365), self.start - timedelta(days=400))
                    removed = self.day_between(listed + timedelta(days=90), self.start - timedelta(days=1))
                    drafts.append(self.penalty(subject, list_entry, listed, scope=scope, removed_on=removed))
        return drafts

    def demo_records(self, demo: DemoSubject) -> list[RecordDraft]:
        subject = SyntheticSubject(demo.id, demo.kind, demo.name)
        cut = self.cutoff
        out: list[RecordDraft] = []

        def add(domain: str, scope: Scope, days_ago: int, **kwargs: object) -> None:
            entry = next(e for e in self.by_scope.get((demo.kind, scope), []) if e.domain.code == domain)
            out.append(self.penalty(subject, entry, cut - timedelta(days=days_ago), scope=scope, **kwargs))  # type: ignore[arg-type]

        if demo.key == "records" and self.region is Region.TIANJIN:
            add("ecology_environment", Scope.ADMINISTRATIVE_PENALTY, 200)
            add("market_regulation", Scope.ABNORMAL_OPERATIONS_LIST, 90)
            add("transport", Scope.ADMINISTRATIVE_PENALTY, 60, procedure=Procedure.SIMPLIFIED, category="警告")
        elif demo.key == "records" and self.region is Region.BEIJING:
            add("housing_construction", Scope.ADMINISTRATIVE_PENALTY, 400)
            add("urban_management", Scope.ADMINISTRATIVE_COERCION, 100, category="查封场所")
        elif demo.key == "person" and self.region is Region.TIANJIN:
            add("health", Scope.ADMINISTRATIVE_PENALTY, 300, category="警告")
        return out


def generate(
    region: Region,
    *,
    subjects: int,
    seed: int = 2024,
    today: date,
    batch_size: int = 20_000,
    with_demo: bool = True,
) -> Iterator[list[RecordDraft]]:
    """Batches of drafts for ``subjects`` synthetic subjects (plus the demo subjects)."""
    rng = random.Random(f"{seed}:{region.value}")
    maker = _Maker(region, catalogue(region), rng, today)
    batch: list[RecordDraft] = []
    if with_demo:
        for demo in DEMO_SUBJECTS:
            batch.extend(maker.demo_records(demo))
    for i in range(subjects):
        # Most subjects have no record at all.
        if rng.random() >= 0.2:
            continue
        batch.extend(maker.records_for(synthetic_subject(region, i)))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


# County-level divisions by code, for synthetic addresses and registration authorities
# (the codes of :attr:`credit.regions.Region.divisions`).
_DIVISION_NAMES = {
    "110101": "东城区", "110102": "西城区", "110105": "朝阳区", "110106": "丰台区", "110107": "石景山区",
    "110108": "海淀区", "110109": "门头沟区", "110111": "房山区", "110112": "通州区", "110113": "顺义区",
    "110114": "昌平区", "110115": "大兴区", "110116": "怀柔区", "110117": "平谷区", "110118": "密云区",
    "110119": "延庆区",
    "120101": "和平区", "120102": "河东区", "120103": "河西区", "120104": "南开区", "120105": "河北区",
    "120106": "红桥区", "120110": "东丽区", "120111": "西青区", "120112": "津南区", "120113": "北辰区",
    "120114": "武清区", "120115": "宝坻区", "120116": "滨海新区", "120117": "宁河区", "120118": "静海区",
    "120119": "蓟州区",
    "130102": "石家庄市长安区", "130104": "石家庄市桥西区", "130105": "石家庄市新华区", "130108": "石家庄市裕华区",
    "130202": "唐山市路南区", "130203": "唐山市路北区", "130302": "秦皇岛市海港区", "130402": "邯郸市邯山区",
    "130502": "邢台市襄都区", "130602": "保定市竞秀区", "130702": "张家口市桥东区", "130802": "承德市双桥区",
    "130902": "沧州市新华区", "131002": "廊坊市安次区", "131102": "衡水市桃城区",
}  # fmt: skip
_PROVINCE = {Region.BEIJING: "北京市", Region.TIANJIN: "天津市", Region.HEBEI: "河北省"}
_STREETS = list("人民解放建设和平胜利中山新华友谊光明幸福")
# 登记状态 as each region's register writes an entity in business.
_IN_BUSINESS = {Region.BEIJING: "存续（在营、开业、在册）", Region.TIANJIN: "存续", Region.HEBEI: "在业"}
_OTHER_STATES = ("吊销，未注销", "注销", "迁出")
# One synthetic enterprise in fifty is in no register: subjects 7, 57, 107… (never a
# person: persons are every tenth subject from 9).
UNREGISTERED_EVERY, UNREGISTERED_AT = 50, 7


def registration_for(
    region: Region, subject_id: str, name: str, rng: random.Random, today: date
) -> SubjectRegistration:
    """A synthetic entry of ``region``'s register for an enterprise."""
    division = subject_id[2:8]
    place = _DIVISION_NAMES.get(division, "")
    street = f"{rng.choice(_STREETS)}{rng.choice(_STREETS)}路{rng.randrange(1, 300)}号"
    roll = rng.random()
    status = _IN_BUSINESS[region] if roll < 0.94 else _OTHER_STATES[int((roll - 0.94) / 0.02) % 3]
    return SubjectRegistration(
        subject_id=subject_id,
        name=name,
        region=region,
        legal_rep=f"{rng.choice(_SURNAMES)}{rng.choice(_WORDS)}{rng.choice(_WORDS)}",
        address=f"{_PROVINCE[region]}{place}{street}",
        authority=f"{_PROVINCE[region]}{place}市场监督管理局",
        established_on=date(1995, 1, 1) + timedelta(days=rng.randrange(max(1, (today - date(1996, 1, 1)).days))),
        status=status,
    )


def registrations(
    region: Region, *, subjects: int, seed: int = 2024, today: date, batch_size: int = 20_000, with_demo: bool = True
) -> Iterator[list[SubjectRegistration]]:
    """Batches of the region's register entries: the demo enterprises whose home region
    this is, and the region's synthetic enterprises but every :data:`UNREGISTERED_EVERY`-th."""
    rng = random.Random(f"{seed}:{region.value}:register")
    batch: list[SubjectRegistration] = []
    if with_demo:
        for demo in DEMO_SUBJECTS:
            if demo.kind is SubjectKind.ENTERPRISE and home_region(Subject(demo.id, demo.kind)) is region:
                entry = registration_for(region, demo.id, demo.name, rng, today)
                batch.append(replace(entry, status=_IN_BUSINESS[region]))
    for i in range(subjects):
        subject = synthetic_subject(region, i)
        if subject.kind is SubjectKind.PERSON or i % UNREGISTERED_EVERY == UNREGISTERED_AT:
            continue
        batch.append(registration_for(region, subject.id, subject.name, rng, today))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


REGISTER_HEADER = ("统一社会信用代码", "企业名称", "法定代表人", "住所", "登记机关", "成立日期", "登记状态")


def write_register_csv(batches: Iterator[list[SubjectRegistration]], path: Path, *, encoding: str = "utf-8") -> int:
    """Write register entries as a register publishes them (Chinese headers); returns the row count."""
    count = 0
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(REGISTER_HEADER)
        for batch in batches:
            for e in batch:
                established = e.established_on.isoformat() if e.established_on else ""
                writer.writerow((e.subject_id, e.name, e.legal_rep, e.address, e.authority, established, e.status))
                count += 1
    return count


CSV_HEADER = (
    "行政相对人名称",
    "行政相对人类别",
    "统一社会信用代码",
    "证件号码",
    "行政处罚决定书文号",
    "处罚类别",
    "处罚内容",
    "处罚决定日期",
    "公示截止期",
    "处罚机关",
    "领域",
    "数据范围",
    "程序类型",
    "状态",
    "移出日期",
    "记录编号",
)
_PROCEDURE_ZH = {Procedure.GENERAL: "普通程序", Procedure.SIMPLIFIED: "简易程序", Procedure.NOT_APPLICABLE: ""}
_STATUS_ZH = {RecordStatus.IN_FORCE: "有效", RecordStatus.REPAIRED: "已信用修复", RecordStatus.REVOKED: "已撤销"}


def write_csv(batches: Iterator[list[RecordDraft]], path: Path) -> int:
    """Write drafts as an ingestible CSV in the national layout; returns the row count."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        for batch in batches:
            for d in batch:
                person = d.subject_kind is SubjectKind.PERSON
                writer.writerow(
                    (
                        d.subject_name,
                        "自然人" if person else "法人及非法人组织",
                        "" if person else d.subject_id,
                        d.subject_id if person else "",
                        d.decision_no,
                        d.category,
                        d.content,
                        d.decided_on.isoformat(),
                        d.publicity_until.isoformat() if d.publicity_until else "",
                        d.authority,
                        d.domain,
                        d.scope.name_zh,
                        _PROCEDURE_ZH[d.procedure],
                        _STATUS_ZH[d.status],
                        d.removed_on.isoformat() if d.removed_on else "",
                        d.record_id,
                    )
                )
                count += 1
    return count


NATIONAL_HEADER = (
    "行政相对人名称", "行政相对人类别", "行政相对人代码_1(统一社会信用代码)", "行政相对人代码_2(工商注册号)",
    "行政相对人代码_3(组织机构代码)", "行政相对人代码_4(税务登记号)", "行政相对人代码_5(事业单位证书号)",
    "行政相对人代码_6(社会组织登记证号)", "法定代表人", "法定代表人证件类型", "法定代表人证件号码", "证件类型",
    "证件号码", "行政处罚决定书文号", "违法行为类型", "违法事实", "处罚依据", "处罚类别", "处罚内容",
    "罚款金额(万元)", "没收违法所得、没收非法财物的金额(万元)", "暂扣或吊销证照名称及编号", "处罚决定日期",
    "处罚有效期", "公示截止期", "处罚机关", "处罚机关统一社会信用代码", "数据来源单位",
    "数据来源单位统一社会信用代码", "备注",
)  # fmt: skip


def write_national_csv(batches: Iterator[list[RecordDraft]], path: Path, *, limit: int | None = None) -> int:
    """Write the penalties among drafts (at most ``limit``) as the national 双公示 行政处罚
    standard publishes them (30 columns, no 领域 column: the loader works the domain out
    from the authority); returns the row count."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(NATIONAL_HEADER)
        for batch in batches:
            for d in batch:
                if d.scope is not Scope.ADMINISTRATIVE_PENALTY:
                    continue
                if limit is not None and count >= limit:
                    return count
                person = d.subject_kind is SubjectKind.PERSON
                row = [""] * len(NATIONAL_HEADER)
                row[0] = d.subject_name
                row[1] = "自然人" if person else "法人及非法人组织"
                row[2] = "" if person else d.subject_id
                row[11], row[12] = ("身份证", d.subject_id) if person else ("", "")
                row[13] = d.decision_no
                row[17], row[18] = d.category, d.content
                row[22] = d.decided_on.isoformat()
                row[24] = d.publicity_until.isoformat() if d.publicity_until else ""
                row[25] = d.authority
                row[27] = d.authority
                writer.writerow(row)
                count += 1
    return count
