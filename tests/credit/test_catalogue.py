"""Domains, scopes and the three regions' packaged catalogues."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from credit.catalogue import Catalogue, Domain, Scope, build_catalogue, catalogue, domain, domains
from credit.errors import UnknownName
from credit.identifiers import SubjectKind
from credit.regions import Region

Covered = Callable[[Region, str, Scope], bool]


@pytest.fixture
def covered() -> Covered:
    """A builder: whether a region's packaged catalogue covers domain × scope for enterprises."""

    def covers(region: Region, domain_code: str, scope: Scope) -> bool:
        return catalogue(region).covers(domain_code, SubjectKind.ENTERPRISE, scope)

    return covers


def _enterprise_domains(region: Region) -> list[str]:
    return [e.domain.code for e in catalogue(region).for_subject(SubjectKind.ENTERPRISE)]


def _scopes_anywhere(region: Region) -> set[Scope]:
    return {s for e in catalogue(region).entries for s in e.scopes}


@pytest.mark.parametrize("region", list(Region))
def test_packaged_catalogue_loads(region: Region) -> None:
    cat = catalogue(region)
    assert isinstance(cat, Catalogue)
    assert cat.region is region
    assert cat.version
    assert cat.entries


@pytest.mark.parametrize(
    ("region", "count"),
    [(Region.TIANJIN, 40), (Region.BEIJING, 45), (Region.HEBEI, 38)],
)
def test_enterprise_domain_counts(region: Region, count: int) -> None:
    codes = _enterprise_domains(region)
    assert len(codes) == count
    assert len(set(codes)) == count  # no domain listed twice


def test_tianjin_covers_only_health_for_persons() -> None:
    persons = list(catalogue(Region.TIANJIN).for_subject(SubjectKind.PERSON))
    assert [e.domain.code for e in persons] == ["health"]
    assert persons[0].scopes == (Scope.ADMINISTRATIVE_PENALTY,)
    assert persons[0].subject is SubjectKind.PERSON


def test_catalogue_entries_differ_by_subject_kind() -> None:
    tianjin = catalogue(Region.TIANJIN)
    assert tianjin.entry("market_regulation", SubjectKind.ENTERPRISE) is not None
    assert tianjin.entry("market_regulation", SubjectKind.PERSON) is None
    assert tianjin.entry("health", SubjectKind.PERSON) is not None
    assert not tianjin.covers("market_regulation", SubjectKind.PERSON, Scope.ADMINISTRATIVE_PENALTY)


def test_taxation_dishonesty_list_covered_in_tianjin_not_hebei(covered: Covered) -> None:
    assert covered(Region.TIANJIN, "taxation", Scope.SERIOUS_DISHONESTY_LIST)
    assert not covered(Region.HEBEI, "taxation", Scope.SERIOUS_DISHONESTY_LIST)
    assert covered(Region.HEBEI, "taxation", Scope.ADMINISTRATIVE_PENALTY)


def test_administrative_coercion_in_beijing_only() -> None:
    assert Scope.ADMINISTRATIVE_COERCION in _scopes_anywhere(Region.BEIJING)
    assert Scope.ADMINISTRATIVE_COERCION not in _scopes_anywhere(Region.HEBEI)
    assert Scope.ADMINISTRATIVE_COERCION not in _scopes_anywhere(Region.TIANJIN)


def test_criminal_judgment_only_in_beijing_judicial(covered: Covered) -> None:
    assert covered(Region.BEIJING, "judicial", Scope.CRIMINAL_JUDGMENT)
    assert not covered(Region.TIANJIN, "judicial", Scope.CRIMINAL_JUDGMENT)
    assert Scope.CRIMINAL_JUDGMENT not in _scopes_anywhere(Region.HEBEI)


def test_catalogues_cover_different_domains() -> None:
    beijing, tianjin, hebei = (set(_enterprise_domains(r)) for r in (Region.BEIJING, Region.TIANJIN, Region.HEBEI))
    assert "ports_shipping" in tianjin and "ports_shipping" in hebei and "ports_shipping" not in beijing
    assert "cyberspace" in beijing and "cyberspace" not in tianjin | hebei
    assert "ocean" in hebei and "ocean" not in beijing | tianjin
    assert "earthquake" in tianjin and "earthquake" not in hebei


def test_some_domain_scope_pair_differs_between_every_two_regions() -> None:
    def pairs(region: Region) -> set[tuple[str, Scope]]:
        return {(e.domain.code, s) for e in catalogue(region).for_subject(SubjectKind.ENTERPRISE) for s in e.scopes}

    regions = list(Region)
    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            assert pairs(a) != pairs(b), (a, b)


@pytest.mark.parametrize("region", list(Region))
def test_every_catalogue_domain_is_a_known_domain(region: Region) -> None:
    known = domains()
    for entry in catalogue(region).entries:
        assert known[entry.domain.code] == entry.domain
        assert entry.scopes
        assert len(set(entry.scopes)) == len(entry.scopes)


def test_domains_are_unique_and_named() -> None:
    known = domains()
    assert len(known) >= 45
    assert all(code == d.code and d.name for code, d in known.items())
    assert len({d.name for d in known.values()}) == len(known)
    assert known["market_regulation"] == Domain("market_regulation", "市场监管")


def test_domain_lookup_by_code_and_chinese_name() -> None:
    assert domain("ecology_environment") == Domain("ecology_environment", "生态环境")
    assert domain("生态环境") == Domain("ecology_environment", "生态环境")
    assert domain(" 税务 ").code == "taxation"


def test_unknown_domain_is_rejected() -> None:
    with pytest.raises(UnknownName) as caught:
        domain("astrology", field="domain_code")
    assert caught.value.violations[0].field == "domain_code"
    assert "astrology" in caught.value.detail


@pytest.mark.parametrize("scope", list(Scope))
def test_scope_parses_from_code_and_chinese_name(scope: Scope) -> None:
    assert Scope.parse(scope.value) is scope
    assert Scope.parse(scope.name_zh) is scope
    assert Scope.parse(f"  {scope.value} ") is scope


def test_scope_names() -> None:
    assert Scope.parse("行政处罚") is Scope.ADMINISTRATIVE_PENALTY
    assert Scope.parse("严重失信主体名单") is Scope.SERIOUS_DISHONESTY_LIST
    assert Scope.parse("刑事裁判") is Scope.CRIMINAL_JUDGMENT


def test_list_scopes_are_the_four_lists() -> None:
    assert {s for s in Scope if s.is_list} == {
        Scope.SERIOUS_DISHONESTY_LIST,
        Scope.ABNORMAL_OPERATIONS_LIST,
        Scope.SERIOUS_ILLEGAL_DISHONESTY_LIST,
        Scope.FATAL_ACCIDENT_LIST,
    }


@pytest.mark.parametrize("raw", ["penalty", "", "行政许可"])
def test_unknown_scope_is_rejected(raw: str) -> None:
    with pytest.raises(UnknownName) as caught:
        Scope.parse(raw, field="scopes[0]")
    assert caught.value.violations[0].field == "scopes[0]"
    assert "unknown scope" in caught.value.detail


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("beijing", Region.BEIJING),
        ("北京", Region.BEIJING),
        (" Tianjin ", Region.TIANJIN),
        ("天津", Region.TIANJIN),
        ("HEBEI", Region.HEBEI),
        ("河北", Region.HEBEI),
    ],
)
def test_region_parses_from_code_and_chinese_name(raw: str, region: Region) -> None:
    assert Region.parse(raw) is region


@pytest.mark.parametrize("raw", ["shanghai", "上海", ""])
def test_unknown_region_is_rejected(raw: str) -> None:
    with pytest.raises(UnknownName) as caught:
        Region.parse(raw, field="regions[1]")
    assert caught.value.violations[0].field == "regions[1]"
    assert "beijing, tianjin, hebei" in caught.value.detail


@pytest.mark.parametrize("region", list(Region))
def test_region_division_codes_match_prefix(region: Region) -> None:
    assert region.divisions
    assert all(len(d) == 6 and d.isdigit() and d.startswith(region.division_prefix) for d in region.divisions)


def test_build_catalogue_rejects_unknown_names() -> None:
    with pytest.raises(UnknownName):
        build_catalogue(Region.TIANJIN, "t", [{"domain": "nowhere", "subject": "enterprise", "scopes": []}])
    with pytest.raises(UnknownName):
        build_catalogue(Region.TIANJIN, "t", [{"domain": "taxation", "subject": "alien", "scopes": []}])
    with pytest.raises(UnknownName):
        build_catalogue(Region.TIANJIN, "t", [{"domain": "taxation", "subject": "enterprise", "scopes": ["x"]}])


def test_build_catalogue_from_data() -> None:
    cat = build_catalogue(
        Region.HEBEI,
        "test.1",
        [{"domain": "税务", "subject": "person", "scopes": ["行政处罚"], "authorities": ["省税务局"]}],
    )
    entry = cat.entry("taxation", SubjectKind.PERSON)
    assert entry is not None
    assert entry.authorities == ("省税务局",)
    assert cat.covers("taxation", SubjectKind.PERSON, Scope.ADMINISTRATIVE_PENALTY)
    assert not cat.covers("taxation", SubjectKind.ENTERPRISE, Scope.ADMINISTRATIVE_PENALTY)
