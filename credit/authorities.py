"""Which domain (领域) an authority's records belong to, worked out from its name.

Penalty files in the national 双公示 行政处罚 format carry the deciding authority
(处罚机关) but no domain. The domain is looked up in packaged data
(``credit/data/authorities/``): the exact names of a region's own bodies, then name
patterns for the district, county and national vertical bodies that follow one naming
scheme everywhere. A name the data does not cover maps to None — never to a guess —
and its rows need a 领域 column instead.

How a name is matched, first answer wins:

1. the name is normalised (:func:`normalise_authority`);
2. exact names: the region's, then those that hold everywhere;
3. a name that lists several bodies (``、`` ``,`` ``;`` ``/`` between them) and is not an
   exact name is unmapped: a joint decision has no single domain;
4. patterns: the region's, then those that hold everywhere, each in file order; a pattern
   matches the whole name (:func:`re.fullmatch`);
5. when nothing matched and the name ends in a bracketed remark — ``（盖章）``, or a
   second name such as ``（天津市知识产权局）`` — the remark is dropped and the lookup
   starts again from step 2. So a body with two names is mapped by its first name,
   unless the full double name is listed exactly (``河北省自然资源厅（河北省海洋局）``).
"""

from __future__ import annotations

import re
import tomllib
import types
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from credit.regions import Region

# Whitespace in every script, and the invisible format characters that arrive with text
# pasted from web pages and Word: soft hyphen, zero-width space and joiners, direction
# marks and embeddings, word joiner, byte-order mark.
_INVISIBLE = re.compile(r"[\s\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]+")
# NFKC turns full-width brackets into ASCII ones; official names are written with
# full-width brackets, and the data is, so the result uses those.
_BRACKETS = str.maketrans({"(": "（", ")": "）"})
_SEVERAL_BODIES = re.compile(r"[、,;/|]")
# Pattern shorthands, spelled out in the data file's header.
_PLACEHOLDERS = {
    "{place}": r"(?:.*[省市区县旗城])?",
    "{unit}": r"(?:.+(?:[局所队站处部]|中心))?",
}
_CACHE_LIMIT = 100_000  # distinct names kept; a region has thousands, not millions


def normalise_name(text: str) -> str:
    """``text`` as names are compared: NFKC (full-width letters, digits and punctuation to
    half-width; compatibility ideographs to unified ones), with every whitespace and
    invisible format character removed (``\\u3000``, ``\\u200b``-``\\u200d``, ``\\ufeff``…).

    Raises nothing.
    """
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


def normalise_authority(text: str) -> str:
    """An authority name in its canonical form: :func:`normalise_name`, with round
    brackets written full-width as in official names (``（盖章）``).

    Bracketed remarks are kept: whether one matters is the matcher's business (a second
    name in brackets can be what tells two bodies apart), so this stays lossless apart
    from width and spacing.

    Raises nothing.
    """
    return normalise_name(text).translate(_BRACKETS)


@dataclass(frozen=True, slots=True)
class AuthorityRule:
    """A name pattern (matched against the whole normalised name) and its domain code."""

    pattern: re.Pattern[str]
    domain: str


class AuthorityMap:
    """Domain codes for authority names: exact names first, then patterns in order.

    Answers are kept per name as given, since the same few thousand names repeat over
    millions of rows.
    """

    __slots__ = ("_answers", "names", "rules")

    def __init__(self, names: Mapping[str, str], rules: Iterable[AuthorityRule]) -> None:
        """``names`` maps normalised names to domain codes; ``rules`` are tried in order.

        Raises nothing.
        """
        self.names: Mapping[str, str] = types.MappingProxyType(dict(names))
        self.rules: tuple[AuthorityRule, ...] = tuple(rules)
        self._answers: dict[str, str | None] = {}

    @classmethod
    def from_tables(cls, tables: Iterable[Mapping[str, object]]) -> AuthorityMap:
        """A map from data tables in their TOML form, most specific first: an earlier
        table's exact name wins over a later one's, and its patterns are tried first.

        Raises:
            ValueError: a table is malformed or a pattern is not a valid regular expression.
        """
        names: dict[str, str] = {}
        rules: list[AuthorityRule] = []
        for table in tables:
            for name, code in _table_names(table):
                names.setdefault(normalise_authority(name), code)
            rules.extend(_table_rules(table))
        return cls(names, rules)

    def domain_of(self, authority: str) -> str | None:
        """The domain code of the body named ``authority``, or None when the data does
        not say (then the domain has to come from the file).

        Raises nothing.
        """
        try:
            return self._answers[authority]
        except KeyError:
            pass
        found = self._resolve(normalise_authority(authority))
        if len(self._answers) >= _CACHE_LIMIT:
            self._answers.clear()
        self._answers[authority] = found
        return found

    def _resolve(self, name: str) -> str | None:
        while name:
            exact = self.names.get(name)
            if exact is not None:
                return exact
            if _SEVERAL_BODIES.search(name):
                return None
            for rule in self.rules:
                if rule.pattern.fullmatch(name):
                    return rule.domain
            shorter = _without_trailing_remark(name)
            if shorter == name:
                return None
            name = shorter
        return None


def _without_trailing_remark(name: str) -> str:
    """``name`` without the bracketed part it ends with (nested brackets included)."""
    if not name.endswith("）"):
        return name
    depth = 0
    for i in range(len(name) - 1, -1, -1):
        if name[i] == "）":
            depth += 1
        elif name[i] == "（":
            depth -= 1
            if depth == 0:
                return name[:i]
    return name  # unbalanced: leave it alone rather than cut at a guess


def _table_names(table: Mapping[str, object]) -> Iterable[tuple[str, str]]:
    names = table.get("names", {})
    if not isinstance(names, Mapping):
        raise ValueError("authorities: [names] must be a table of name = domain code")
    for name, code in names.items():
        if not isinstance(code, str) or not code:
            raise ValueError(f"authorities: name {name!r} needs a domain code")
        yield str(name), code


def _table_rules(table: Mapping[str, object]) -> Iterable[AuthorityRule]:
    raw = table.get("rule", [])
    if not isinstance(raw, list):
        raise ValueError("authorities: [[rule]] must be an array of tables")
    for item in raw:
        if not isinstance(item, Mapping):
            raise ValueError("authorities: [[rule]] must be an array of tables")
        match, code = item.get("match"), item.get("domain")
        if not isinstance(match, str) or not match or not isinstance(code, str) or not code:
            raise ValueError(f"authorities: rule {item!r} needs a match pattern and a domain code")
        pattern = match
        for placeholder, expansion in _PLACEHOLDERS.items():
            pattern = pattern.replace(placeholder, expansion)
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"authorities: rule {match!r} is not a valid pattern: {exc}") from exc
        yield AuthorityRule(compiled, code)


def authority_tables(region: Region) -> tuple[dict[str, object], dict[str, object]]:
    """The packaged data for a region: its own table, then the one that holds everywhere.

    Raises:
        FileNotFoundError, tomllib.TOMLDecodeError: the packaged data is missing or
            malformed (a packaging fault).
    """
    return _load(region.value), _load("common")


@cache
def authority_map(region: Region) -> AuthorityMap:
    """The packaged authority map of a region: its own names and patterns, then those
    that hold everywhere.

    Raises:
        FileNotFoundError, tomllib.TOMLDecodeError, ValueError: the packaged data is
            missing or malformed (a packaging fault).
    """
    return AuthorityMap.from_tables(authority_tables(region))


def _load(stem: str) -> dict[str, object]:
    text = resources.files("credit").joinpath("data", "authorities", f"{stem}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)
