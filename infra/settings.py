"""Reading a service's settings from the environment: ``PREFIX_NAME`` variables, typed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from credit.errors import InvalidInput


def env_values(env: Mapping[str, str], prefix: str, fields: tuple[tuple[str, type], ...]) -> dict[str, Any]:
    """``PREFIX_NAME`` variables converted to each field's type; absent ones left out.

    Raises:
        InvalidInput: a value that does not convert.
    """
    values: dict[str, Any] = {}
    for name, kind in fields:
        raw = env.get(f"{prefix}_{name.upper()}")
        if raw is None:
            continue
        try:
            values[name] = kind(raw)
        except ValueError:
            raise InvalidInput.for_field(f"{prefix}_{name.upper()}", f"not a valid {kind.__name__}: {raw!r}") from None
    return values
