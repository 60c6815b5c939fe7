"""Authority names (处罚机关) to domains (领域), and the domain aliases of a 领域 column."""

from __future__ import annotations

import tomllib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

import credit.authorities
from credit.authorities import AuthorityMap, authority_map, authority_tables, normalise_authority, normalise_name
from credit.catalogue import Domain, catalogue, domain, domains
from credit.errors import UnknownName
from credit.identifiers import SubjectKind
from credit.regions import Region

NAMES_FILE = Path(__file__).parent.parent / "data" / "authority_names.toml"
_DATA: dict[str, Any] = tomllib.loads(NAMES_FILE.read_text(encoding="utf-8"))
NAMED: list[dict[str, str]] = _DATA["name"]
UNMAPPED: list[dict[str, str]] = _DATA["unmapped"]

# Catalogue phrases that describe many bodies rather than name one.
CATALOGUE_DESCRIPTIONS = frozenset(
    {
        "各区",
        "各市、县(市、区)",
        "沿海各市、县(区)",
        "各级人民法院",
        "各设区市住房公积金管理中心",
        "秦皇岛市、唐山市、沧州市港口管理部门",
    }
)
# fmt: off
BEIJING_DISTRICTS = (
    "东城区", "西城区", "朝阳区", "海淀区", "丰台区", "石景山区", "门头沟区", "房山区",
    "通州区", "顺义区", "昌平区", "大兴区", "怀柔区", "平谷区", "密云区", "延庆区",
)
TIANJIN_DISTRICTS = (
    "和平区", "河东区", "河西区", "南开区", "河北区", "红桥区", "东丽区", "西青区",
    "津南区", "北辰区", "武清区", "宝坻区", "滨海新区", "宁河区", "静海区", "蓟州区",
)
HEBEI_CITIES = ("石家庄", "唐山", "秦皇岛", "邯郸", "邢台", "保定", "张家口", "承德", "沧州", "廊坊", "衡水")
# fmt: on


def _id(row: dict[str, str]) -> str:
    return f"{row['region']}:{row['authority']}"


# ── normalisation ────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("天津市市场监督管理委员会", "天津市市场监督管理委员会"),
        ("  天津市 和平区\t市场监督管理局\n", "天津市和平区市场监督管理局"),
        ("天津市\u3000和平区", "天津市和平区"),
        ("\ufeff天津市\u200b和平\u200c区\u200d", "天津市和平区"),
        ("天津市市场监督管理委员会(盖章)", "天津市市场监督管理委员会（盖章）"),
        ("天津市市场监督管理委员会（盖章）", "天津市市场监督管理委员会（盖章）"),
        ("国家税务总局天津市和平区税务局第１税务所", "国家税务总局天津市和平区税务局第1税务所"),
        ("ＡＢＣ市场监管所", "ABC市场监管所"),
        ("", ""),
    ],
)
def test_normalise_authority(given: str, expected: str) -> None:
    assert normalise_authority(given) == expected


def test_normalise_name_leaves_brackets_half_width() -> None:
    assert normalise_name(" 市场（监管） ") == "市场(监管)"


# ── the names file ───────────────────────────────────────────────────────────────────


def test_names_file_is_broad_enough() -> None:
    assert len(NAMED) >= 300
    for region in Region:
        rows = [r for r in NAMED if r["region"] == region.value]
        assert len(rows) >= 80, region
        districts = sum(r["level"] == "district" for r in rows)
        assert districts * 2 >= len(rows), region
    assert {r["level"] for r in NAMED} == {"city", "district"}
    repeated = [k for k, n in Counter(_id(r) for r in NAMED + UNMAPPED).items() if n > 1]
    assert repeated == []


@pytest.mark.parametrize(
    ("region", "places"),
    [
        (Region.BEIJING, (*BEIJING_DISTRICTS, "经济技术开发区")),
        (Region.TIANJIN, TIANJIN_DISTRICTS),
        (Region.HEBEI, (*HEBEI_CITIES, "辛集市", "定州市", "雄安新区")),
    ],
)
def test_names_file_covers_every_place(region: Region, places: tuple[str, ...]) -> None:
    named = [r["authority"] for r in NAMED if r["region"] == region.value]
    missing = [p for p in places if not any(p in name for name in named)]
    assert missing == []


@pytest.mark.parametrize("region", list(Region))
def test_names_file_has_a_name_for_every_catalogue_domain(region: Region) -> None:
    named = {r["domain"] for r in NAMED if r["region"] == region.value}
    listed = {e.domain.code for e in catalogue(region).entries}
    assert listed - named == set()


def test_names_file_names_only_known_domains() -> None:
    assert {r["domain"] for r in NAMED} <= set(domains())


# ── mapping ──────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("row", NAMED, ids=_id)
def test_named_authority_maps_to_its_domain(row: dict[str, str]) -> None:
    assert authority_map(Region(row["region"])).domain_of(row["authority"]) == row["domain"]


def _as_written(name: str) -> list[str]:
    """The ways one name arrives in real files."""
    half = name.replace("（", "(").replace("）", ")")
    return [
        f"  {name}\t",
        " ".join(name),
        "\u3000".join(name[:4]) + name[4:],
        f"\ufeff{name[:3]}\u200b{name[3:]}\u200d",
        f"{half}(盖章)",
        f"{name}（盖章）",
        f"{name}（代章）（2）",
    ]


@pytest.mark.parametrize("row", NAMED[::3], ids=_id)
def test_name_maps_the_same_however_written(row: dict[str, str]) -> None:
    authorities = authority_map(Region(row["region"]))
    for written in _as_written(row["authority"]):
        assert authorities.domain_of(written) == row["domain"], written


@pytest.mark.parametrize("row", UNMAPPED, ids=_id)
def test_ambiguous_or_foreign_name_stays_unmapped(row: dict[str, str]) -> None:
    assert row["why"]
    assert authority_map(Region(row["region"])).domain_of(row["authority"]) is None


@pytest.mark.parametrize("name", ["", "   ", "\u200b", "（盖章）", "各区", "各市、县(市、区)", "某某办公室"])
@pytest.mark.parametrize("region", list(Region))
def test_nothing_to_go_on_is_unmapped(region: Region, name: str) -> None:
    assert authority_map(region).domain_of(name) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # 药监 is its own domain, never 市场监管.
        ("药品监督管理局", "drug_regulation"),
        ("天津市药品监督管理局", "drug_regulation"),
        ("北京市药品监督管理局第三分局", "drug_regulation"),
        ("天津市和平区市场监督管理局", "market_regulation"),
        # The fire service inside the police before 2018, the traffic police today.
        ("天津市公安消防总队", "fire_safety"),
        ("北京市公安局消防局", "fire_safety"),
        ("天津市红桥区消防救援支队西于庄消防救援站", "fire_safety"),
        ("天津市公安交通管理局", "public_security"),
        ("北京市公安局公安交通管理局朝阳交通支队", "public_security"),
        ("北京市交通执法总队", "transport"),
        # 国家税务总局 and its units at every level.
        ("国家税务总局", "taxation"),
        ("国家税务总局天津市税务局第二稽查局", "taxation"),
        ("国家税务总局天津市滨海新区税务局第一税务所", "taxation"),
        # A combined bureau is not its last part.
        ("北京市东城区教育和体育局", None),
        ("天津市和平区商务和投资促进局", None),
        ("天津市河西区科学技术和信息化局", None),
        ("天津市西青区农业农村和水务局", None),
        # A second name in brackets: the first name decides, unless listed exactly.
        ("天津市市场监督管理委员会（天津市知识产权局）", "market_regulation"),
        ("天津市规划和自然资源局（天津市海洋局）", "planning_natural_resources"),
        # Brackets nested or unbalanced: a remark is dropped only when it closes properly.
        ("天津市公安局和平分局（代（章））", "public_security"),
        ("天津市公安局和平分局代章）", None),
        # Several bodies in one decision.
        ("天津市卫生健康委员会、天津市医疗保障局", None),
        ("天津市公安局/天津市交通运输委员会", None),
    ],
)
def test_specific_rules_win(name: str, expected: str | None) -> None:
    assert authority_map(Region.TIANJIN).domain_of(name) == expected


def test_region_data_applies_in_its_region_only() -> None:
    # Hebei's catalogue gives 文化旅游 to the combined 文化广电和旅游局 of its cities and
    # counties; 园林绿化 is a Beijing domain.
    assert authority_map(Region.HEBEI).domain_of("廊坊市文化广电和旅游局") == "culture_tourism"
    assert authority_map(Region.TIANJIN).domain_of("廊坊市文化广电和旅游局") is None
    assert authority_map(Region.BEIJING).domain_of("北京市顺义区园林绿化局") == "landscaping_forestry"
    assert authority_map(Region.TIANJIN).domain_of("北京市顺义区园林绿化局") is None
    assert authority_map(Region.HEBEI).domain_of("河北省自然资源厅（河北省海洋局）") == "ocean"
    assert authority_map(Region.HEBEI).domain_of("河北省自然资源厅") == "planning_natural_resources"


def test_answers_stay_right_when_the_cache_is_emptied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credit.authorities, "_CACHE_LIMIT", 2)
    authorities = AuthorityMap.from_tables(authority_tables(Region.TIANJIN))
    names = ["天津市公安局", "天津市水务局", "天津市审计局", "天津市公安局", "某某办公室", "天津市水务局"]
    expected = ["public_security", "water", "audit", "public_security", None, "water"]
    assert [authorities.domain_of(n) for n in names * 2] == expected * 2


# ── the packaged data ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("region", list(Region))
def test_data_names_only_known_domains(region: Region) -> None:
    authorities = authority_map(region)
    known = set(domains())
    assert set(authorities.names.values()) <= known
    assert {rule.domain for rule in authorities.rules} <= known


@pytest.mark.parametrize("region", list(Region))
def test_exact_names_are_written_normalised_and_agree(region: Region) -> None:
    own, common = authority_tables(region)
    own_names: dict[str, str] = own.get("names", {})  # type: ignore[assignment]
    common_names: dict[str, str] = common.get("names", {})  # type: ignore[assignment]
    for name in (*own_names, *common_names):
        assert normalise_authority(name) == name
    for name in own_names.keys() & common_names.keys():
        assert own_names[name] == common_names[name], name


@pytest.mark.parametrize("region", list(Region))
def test_every_catalogue_authority_maps_to_its_entry(region: Region) -> None:
    listed: defaultdict[str, set[str]] = defaultdict(set)
    for entry in catalogue(region).entries:
        for name in entry.authorities:
            if name not in CATALOGUE_DESCRIPTIONS:
                listed[name].add(entry.domain.code)
    authorities = authority_map(region)
    wrong = {name: authorities.domain_of(name) for name, codes in listed.items()}
    wrong = {name: got for name, got in wrong.items() if got not in listed[name]}
    assert wrong == {}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Listed under several catalogue domains: the body's own domain.
        ("北京市住房和城乡建设委员会", "housing_construction"),
        ("市住房城乡建设委", "housing_construction"),
        ("河北省住房和城乡建设厅", "housing_construction"),
        ("河北省交通运输厅", "transport"),
    ],
)
def test_body_listed_under_several_domains_maps_to_its_own(name: str, expected: str) -> None:
    region = next(r for r in Region if any(name in e.authorities for e in catalogue(r).entries))
    assert authority_map(region).domain_of(name) == expected


@pytest.mark.parametrize(
    "tables",
    [
        [{"rule": [{"match": "(", "domain": "water"}]}],
        [{"rule": [{"match": ".*水务局"}]}],
        [{"rule": {"match": ".*水务局", "domain": "water"}}],
        [{"names": ["天津市水务局"]}],
        [{"names": {"天津市水务局": ""}}],
    ],
)
def test_malformed_tables_are_rejected(tables: list[dict[str, object]]) -> None:
    with pytest.raises(ValueError, match="authorities"):
        AuthorityMap.from_tables(tables)


def test_earlier_table_wins() -> None:
    specific = {"names": {"天津市（某）局": "water"}, "rule": [{"match": "{place}某局", "domain": "audit"}]}
    general = {"names": {"天津市(某)局": "sports"}, "rule": [{"match": ".*局", "domain": "statistics"}]}
    authorities = AuthorityMap.from_tables([specific, general])
    assert authorities.domain_of("天津市(某)局") == "water"
    assert authorities.domain_of("天津市和平区某局") == "audit"
    assert authorities.domain_of("天津市和平区另一局") == "statistics"
    assert AuthorityMap.from_tables([general, specific]).domain_of("天津市和平区某局") == "statistics"


# ── domain names in a 领域 column ────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("市场监督管理", "market_regulation"),
        ("市场监管", "market_regulation"),
        ("生态环境保护", "ecology_environment"),
        ("环境保护", "ecology_environment"),
        ("人力资源和社会保障", "human_resources"),
        ("住房和城乡建设", "housing_construction"),
        ("应急管理", "work_safety"),
        ("卫生健康", "health"),
        ("交通运输", "transport"),
        ("文化和旅游", "culture_tourism"),
        ("发展和改革", "development_reform"),
        ("工业和信息化", "industry_it"),
        ("税收", "taxation"),
        ("税务", "taxation"),
        ("消防救援", "fire_safety"),
        ("药品监督管理", "drug_regulation"),
        ("民族和宗教事务", "ethnic_religious"),
        (" 生态 环境\u3000保护 ", "ecology_environment"),
        ("\ufeff市场\u200b监督管理", "market_regulation"),
        ("ｍａｒｋｅｔ＿ｒｅｇｕｌａｔｉｏｎ", "market_regulation"),
        (" taxation ", "taxation"),
    ],
)
def test_domain_accepts_names_aliases_and_codes(written: str, code: str) -> None:
    assert domain(written).code == code


def test_unknown_domain_name_is_still_rejected() -> None:
    with pytest.raises(UnknownName) as caught:
        domain("市场监督管理局", field="领域")
    assert caught.value.violations[0].field == "领域"
    assert "市场监督管理局" in caught.value.detail


def test_aliases_are_unambiguous() -> None:
    known = domains()
    names = {d.name for d in known.values()} | set(known)
    seen: Counter[str] = Counter(a for d in known.values() for a in d.aliases)
    assert [a for a, n in seen.items() if n > 1] == []
    assert set(seen) & names == set()
    for d in known.values():
        assert all(a == normalise_name(a) for a in d.aliases), d.code
        assert all(domain(a) is d for a in d.aliases), d.code


def test_aliases_do_not_change_what_a_domain_is() -> None:
    loaded = domains()["market_regulation"]
    assert "市场监督管理" in loaded.aliases
    assert loaded == Domain("market_regulation", "市场监管")
    assert hash(loaded) == hash(Domain("market_regulation", "市场监管"))
    assert catalogue(Region.TIANJIN).entry("market_regulation", SubjectKind.ENTERPRISE) is not None
