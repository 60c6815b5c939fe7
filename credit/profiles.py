"""Report profiles: which records count, as named, versioned data.

Which records count as violations is policy, and policy changes (Tianjin 2023 excludes
simplified-procedure penalties; the 2025 national rule includes them and adds coercion
and criminal records). A profile names the scopes it reports, the exclusions it applies
and the window lengths it offers. Every report names the profile (id and version) it was
made under; people read its Chinese name and edition (``display_name``), never the id.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from credit.catalogue import Scope
from credit.errors import UnknownName

DEFAULT_PROFILE = "tianjin-2023"


@dataclass(frozen=True, slots=True)
class Exclusions:
    """Kinds of record that a profile does not count as violations."""

    simplified_procedure: bool  # 适用简易程序的行政处罚
    not_penalised: bool  # 依法不予行政处罚
    credit_repaired: bool  # 已信用修复
    revoked: bool  # 异议后撤销


@dataclass(frozen=True, slots=True)
class ReportProfile:
    id: str
    version: int
    title: str
    scopes: tuple[Scope, ...]
    window_years: tuple[int, ...]
    default_years: int
    cutoff_working_days: int
    exclude: Exclusions
    validity_days: int  # how long after issue a verifier should take the report as current
    name: str = ""  # the rules' Chinese name, e.g. 天津市公共信用报告（无违法违规证明专用版）
    edition: str = ""  # e.g. 2023 年版

    @property
    def ref(self) -> str:
        """``id@version``, as a report names it."""
        return f"{self.id}@{self.version}"

    @property
    def display_name(self) -> str:
        """What pages and the printed report call the rules: name and edition, e.g.
        天津市公共信用报告（无违法违规证明专用版）2023 年版 (the title when no name is given)."""
        return f"{self.name or self.title}{self.edition}"


def profile_from_data(raw: dict[str, object]) -> ReportProfile:
    """A profile from its data form (as in the packaged TOML files).

    Raises:
        UnknownName: an unknown scope.
        KeyError, TypeError: a malformed profile document.
    """
    exclude = raw["exclude"]
    scopes = raw["scopes"]
    years = raw["window_years"]
    assert isinstance(exclude, dict) and isinstance(scopes, list) and isinstance(years, list)
    return ReportProfile(
        id=str(raw["id"]),
        version=int(str(raw["version"])),
        title=str(raw["title"]),
        scopes=tuple(Scope.parse(s) for s in scopes),
        window_years=tuple(int(y) for y in years),
        default_years=int(str(raw["default_years"])),
        cutoff_working_days=int(str(raw["cutoff_working_days"])),
        exclude=Exclusions(**{k: bool(v) for k, v in exclude.items()}),
        validity_days=int(str(raw["validity_days"])),
        name=str(raw.get("name", "")),
        edition=str(raw.get("edition", "")),
    )


@cache
def profiles() -> dict[str, ReportProfile]:
    """Every packaged profile by id.

    Raises:
        UnknownName, KeyError: the packaged data is malformed (a packaging fault).
    """
    folder = resources.files("credit").joinpath("data", "profiles")
    found = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            profile = profile_from_data(tomllib.loads(item.read_text(encoding="utf-8")))
            found[profile.id] = profile
    return found


def get_profile(profile_id: str, *, field: str = "profile") -> ReportProfile:
    """The profile with this id; an empty id means the default profile.

    Raises:
        UnknownName: no such profile.
    """
    known = profiles()
    key = profile_id.strip() or DEFAULT_PROFILE
    if key in known:
        return known[key]
    names = ", ".join(sorted(known))
    raise UnknownName.for_field(field, f"未知报告规则 '{profile_id}' (unknown profile '{profile_id}'; known: {names})")
