"""Parsing of ``key=value`` arguments (DESIGN §6).

Values are Python literals when they parse as one (``lr=0.1``, ``n=3``,
``flag=True``, ``name='x'``) and plain strings otherwise.
"""

from __future__ import annotations

import ast
import numbers
import re
from collections.abc import Iterable

from .errors import UsageError

_LITERALS = {"True": True, "False": False, "None": None}
# Plain decimal numbers, the most common values, skip the literal parser.
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][+-]?\d+|\.\d+[eE][+-]?\d+)\Z")


def parse_value(text: str):
    """The Python value of one ``value`` text."""
    if text in _LITERALS:
        return _LITERALS[text]
    if _FLOAT.match(text):
        return float(text)
    if _INT.match(text):
        return int(text)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


# MLflow's own rule for metric and parameter names, minus leading punctuation.
_NAME = re.compile(r"[A-Za-z_][\w.\-/ ]*\Z")


def parse_pair(item: str, *, identifier: bool = False) -> tuple[str, object]:
    """``(key, value)`` from ``key=value``; ``identifier`` demands a Python name."""
    key, sep, value = item.partition("=")
    key = key.strip()
    ok = key.isidentifier() or (not identifier and bool(_NAME.match(key)))
    if not sep or not ok:
        raise UsageError(
            f"Could not read {item!r} as key=value; write them like lr=0.1 or name=baseline."
        )
    return key, parse_value(value)


def parse_pairs(items: Iterable[str], *, identifier: bool = False) -> dict[str, object]:
    """A dict from ``key=value`` texts; a repeated key keeps its last value."""
    return dict(parse_pair(item, identifier=identifier) for item in items)


def as_metric(key: str, value) -> float:
    """A metric value as float, or a UsageError naming the key."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UsageError(
            f"Metric {key!r} must be a number, got {value!r}; log text or settings as "
            f"parameters with `%%mlplat run -p {key}=...` instead."
        )
    return float(value)
