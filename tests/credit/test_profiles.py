"""Report profiles: the packaged policies and their lookup."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from credit.catalogue import Scope
from credit.errors import UnknownName
from credit.profiles import DEFAULT_PROFILE, Exclusions, ReportProfile, get_profile, profile_from_data, profiles

LISTS_AND_PENALTY = (
    Scope.ADMINISTRATIVE_PENALTY,
    Scope.SERIOUS_DISHONESTY_LIST,
    Scope.ABNORMAL_OPERATIONS_LIST,
    Scope.SERIOUS_ILLEGAL_DISHONESTY_LIST,
    Scope.FATAL_ACCIDENT_LIST,
)

ProfileData = Callable[..., dict[str, object]]


@pytest.fixture
def profile_data() -> ProfileData:
    """A builder: a profile document in its data form, with fields overridable."""

    def build(**overrides: object) -> dict[str, object]:
        raw: dict[str, object] = {
            "id": "test-profile",
            "version": 2,
            "title": "测试",
            "scopes": ["administrative_penalty", "刑事裁判"],
            "window_years": [3, 5],
            "default_years": 3,
            "cutoff_working_days": 7,
            "validity_days": 30,
            "exclude": {"simplified_procedure": True, "not_penalised": False, "credit_repaired": True, "revoked": True},
        }
        raw.update(overrides)
        return raw

    return build


def test_both_profiles_load() -> None:
    known = profiles()
    assert set(known) == {"tianjin-2023", "national-2025"}
    assert all(isinstance(p, ReportProfile) and known[p.id] is p for p in known.values())


@pytest.mark.parametrize("raw", ["", "   "])
def test_empty_id_means_the_tianjin_default(raw: str) -> None:
    assert DEFAULT_PROFILE == "tianjin-2023"
    assert get_profile(raw).id == "tianjin-2023"


def test_profiles_are_found_by_id() -> None:
    assert get_profile("national-2025").id == "national-2025"
    assert get_profile(" tianjin-2023 ").id == "tianjin-2023"


@pytest.mark.parametrize("raw", ["tianjin-2024", "national", "TIANJIN-2023"])
def test_unknown_profile_is_rejected_listing_known_ones(raw: str) -> None:
    with pytest.raises(UnknownName) as caught:
        get_profile(raw, field="profile_id")
    error = caught.value
    assert error.violations[0].field == "profile_id"
    assert raw in error.detail
    assert "national-2025, tianjin-2023" in error.detail


def test_profile_ref_names_id_and_version() -> None:
    assert get_profile("tianjin-2023").ref == "tianjin-2023@1"
    assert get_profile("national-2025").ref == "national-2025@1"


def test_tianjin_2023_scopes_are_penalties_and_four_lists() -> None:
    profile = get_profile("tianjin-2023")
    assert profile.scopes == LISTS_AND_PENALTY
    assert Scope.ADMINISTRATIVE_COERCION not in profile.scopes
    assert Scope.CRIMINAL_JUDGMENT not in profile.scopes


def test_national_2025_adds_coercion_and_criminal_judgments() -> None:
    profile = get_profile("national-2025")
    assert profile.scopes[:5] == LISTS_AND_PENALTY
    assert Scope.ADMINISTRATIVE_COERCION in profile.scopes
    assert Scope.CRIMINAL_JUDGMENT in profile.scopes
    assert len(profile.scopes) == 7


def test_tianjin_2023_excludes_simplified_not_penalised_repaired_revoked() -> None:
    assert get_profile("tianjin-2023").exclude == Exclusions(
        simplified_procedure=True, not_penalised=True, credit_repaired=True, revoked=True
    )


def test_national_2025_counts_simplified_procedure_penalties() -> None:
    assert get_profile("national-2025").exclude == Exclusions(
        simplified_procedure=False, not_penalised=True, credit_repaired=True, revoked=True
    )


@pytest.mark.parametrize("profile_id", ["tianjin-2023", "national-2025"])
def test_windows_offered(profile_id: str) -> None:
    profile = get_profile(profile_id)
    assert profile.window_years == (3, 5)
    assert profile.default_years == 3
    assert profile.cutoff_working_days == 7
    assert profile.title


def test_profile_from_data(profile_data: ProfileData) -> None:
    profile = profile_from_data(profile_data())
    assert profile.ref == "test-profile@2"
    assert profile.scopes == (Scope.ADMINISTRATIVE_PENALTY, Scope.CRIMINAL_JUDGMENT)
    assert profile.exclude.not_penalised is False
    assert profile.exclude.simplified_procedure is True
    assert profile.validity_days == 30


def test_profile_from_data_rejects_unknown_scope(profile_data: ProfileData) -> None:
    with pytest.raises(UnknownName):
        profile_from_data(profile_data(scopes=["administrative_penalty", "gossip"]))


def test_profile_from_data_rejects_unknown_exclusion(profile_data: ProfileData) -> None:
    with pytest.raises(TypeError):
        profile_from_data(profile_data(exclude={"simplified_procedure": True, "late_payment": True}))
