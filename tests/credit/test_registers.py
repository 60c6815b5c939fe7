"""Choosing a report's registration details: the home region's register first."""

from __future__ import annotations

from datetime import date

import pytest

from credit.identifiers import Subject, SubjectKind, make_resident_id, make_uscc, parse_subject
from credit.regions import Region
from credit.registers import NOT_FOR_PERSONS, SubjectRegistration, find_registration, home_region

TIANJIN_CO = parse_subject(make_uscc("91120116MA05JBXQ0"))  # division 120116, 滨海新区
BEIJING_CO = parse_subject(make_uscc("91110108MA01RXNE2"))  # 110108, 海淀区
SHANGHAI_CO = parse_subject(make_uscc("91310115MA1H7XYW1"))  # 310115, 浦东新区
HEBEI_PERSON = parse_subject(make_resident_id("13010219900101002"))
ALL = tuple(Region)


def entry(subject: Subject, region: Region, status: str = "存续", name: str = "") -> SubjectRegistration:
    return SubjectRegistration(
        subject.id,
        name or f"{region.name_zh}登记的名称",
        region,
        "张三",
        "某地某路1号",
        "某局",
        date(2015, 1, 1),
        status,
    )


@pytest.mark.parametrize(
    ("subject", "region"),
    [
        (TIANJIN_CO, Region.TIANJIN),
        (BEIJING_CO, Region.BEIJING),
        (parse_subject(make_uscc("91130102MA0ABCDE2")), Region.HEBEI),
        (HEBEI_PERSON, Region.HEBEI),  # an ID number: its first six digits
        (parse_subject(make_resident_id("11010519491231002")), Region.BEIJING),
        (SHANGHAI_CO, None),
    ],
)
def test_the_home_region_is_the_division_in_the_identifier(subject: Subject, region: Region | None) -> None:
    assert home_region(subject) is region


def test_the_home_regions_register_wins_over_others_that_know_the_subject() -> None:
    found = {r: entry(TIANJIN_CO, r) for r in ALL}
    chosen = find_registration(TIANJIN_CO, found, asked=ALL)
    assert chosen.registration is not None and chosen.registration.region is Region.TIANJIN
    assert chosen.home is Region.TIANJIN and chosen.note == ""


def test_another_region_that_knows_the_subject_stands_in_for_its_home() -> None:
    found = {Region.BEIJING: None, Region.TIANJIN: None, Region.HEBEI: entry(TIANJIN_CO, Region.HEBEI)}
    chosen = find_registration(TIANJIN_CO, found, asked=ALL)
    assert chosen.registration is not None and chosen.registration.region is Region.HEBEI
    # Federation order among the others: Beijing before Hebei.
    found[Region.BEIJING] = entry(TIANJIN_CO, Region.BEIJING)
    assert find_registration(TIANJIN_CO, found, asked=ALL).registration.region is Region.BEIJING  # type: ignore[union-attr]


def test_a_subject_from_elsewhere_takes_the_first_region_that_knows_it() -> None:
    found = {Region.BEIJING: None, Region.TIANJIN: entry(SHANGHAI_CO, Region.TIANJIN), Region.HEBEI: None}
    chosen = find_registration(SHANGHAI_CO, found, asked=ALL)
    assert chosen.home is None and chosen.registration is not None
    assert chosen.registration.region is Region.TIANJIN


def test_a_home_entry_that_moved_out_gives_way_to_the_register_it_moved_to() -> None:
    found = {
        Region.BEIJING: entry(TIANJIN_CO, Region.BEIJING, "存续（在营、开业、在册）"),
        Region.TIANJIN: entry(TIANJIN_CO, Region.TIANJIN, "迁出"),
        Region.HEBEI: None,
    }
    assert find_registration(TIANJIN_CO, found, asked=ALL).registration.region is Region.BEIJING  # type: ignore[union-attr]
    # Moved out and known nowhere else: the home entry is still what the registers say.
    found[Region.BEIJING] = None
    assert find_registration(TIANJIN_CO, found, asked=ALL).registration.region is Region.TIANJIN  # type: ignore[union-attr]


def test_no_register_knows_the_subject_said_in_words() -> None:
    chosen = find_registration(TIANJIN_CO, dict.fromkeys(ALL), asked=ALL)
    assert chosen.registration is None
    assert chosen.note == "三地市场主体登记信息中均未查到该主体"


def test_registers_that_could_not_be_looked_in_are_named_never_counted_as_not_found() -> None:
    chosen = find_registration(TIANJIN_CO, {Region.BEIJING: None, Region.HEBEI: None}, asked=ALL)
    assert chosen.unsearched == (Region.TIANJIN,)
    assert chosen.note == "北京、河北市场主体登记信息中未查到该主体；天津的登记信息未能查询"
    assert "均未查到" not in chosen.note
    nothing = find_registration(TIANJIN_CO, {}, asked=ALL)
    assert nothing.note.startswith("各地区市场主体登记信息均未能查询")


def test_a_person_is_in_no_register_of_market_entities() -> None:
    chosen = find_registration(HEBEI_PERSON, {r: entry(HEBEI_PERSON, r) for r in ALL}, asked=ALL)
    assert chosen.registration is None and chosen.kind is SubjectKind.PERSON
    assert chosen.note == NOT_FOR_PERSONS
