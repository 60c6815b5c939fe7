"""Reading untrusted JSON: every malformed body is a clear InvalidInput, never a crash.

Python's ``json`` accepts things that later break a handler far from the input: nesting
deep enough to exhaust the stack, lone surrogates (``"\\ud800"``) that no UTF-8 encoder
will write back, and ``NaN``/``Infinity``/``1e999`` that canonical JSON refuses. They
are refused here, where the body is read.
"""

from __future__ import annotations

import json
from typing import Any

from credit.errors import InvalidInput

MAX_DEPTH = 32


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def _check(value: Any, depth: int, field: str) -> None:
    if depth > MAX_DEPTH:
        raise InvalidInput.for_field(field, f"JSON 嵌套过深 (nested deeper than {MAX_DEPTH} levels)")
    if isinstance(value, str):
        _text(value, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            _text(key, field)
            _check(item, depth + 1, field)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1, field)


def _text(value: str, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput.for_field(
            field, "文本含有无效的 Unicode 代理字符 (a string holds a lone surrogate, which is not text)"
        ) from None


def loads(data: str | bytes, *, field: str = "body") -> Any:
    """Parse untrusted JSON.

    Raises:
        InvalidInput: not UTF-8, not JSON, nested deeper than :data:`MAX_DEPTH`, a lone
            surrogate in a string, or a number JSON cannot carry (NaN, Infinity, 1e999).
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput.for_field(field, "请求体不是 UTF-8 编码 (the body is not UTF-8)") from None
    try:
        value = json.loads(data, parse_constant=_constant, parse_float=_float)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or "too deep"
        raise InvalidInput.for_field(field, f"请求体不是有效 JSON (the body is not valid JSON: {reason})") from None
    _check(value, 0, field)
    return value


def safe_text(value: str) -> str:
    """``value`` with anything UTF-8 cannot carry replaced, for echoing input in messages."""
    return value.encode("utf-8", "replace").decode("utf-8")
