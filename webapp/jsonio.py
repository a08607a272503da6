"""JSON in, strictly: what the stdlib parser accepts but no handler can use is refused up front.

Python's `json.loads` takes lone UTF-16 surrogates (`"\\ud800"`, which later fail to encode for
the database or the log line), nesting as deep as its C stack allows, integers of thousands of
digits and `NaN`/`Infinity`. `strict_loads` refuses each with `JSONInputError` (a ValueError),
whose message says what is wrong, so every door answers a 4xx instead of failing later with a
500. Flask's request parsing goes through it (`StrictJSONProvider`), and the GraphQL view
decodes its body with it, so both doors refuse the same inputs.

Costs on the hot path: one regex search over the text (the surrogate check walks the result
only when an escape for one is present) and one walk of the containers for their depth.
"""
from __future__ import annotations

import json
import re
from typing import Any

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 64            # objects and arrays inside one another
MAX_INT_DIGITS = 19       # every integer Delta stores fits a signed 64-bit column
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class JSONInputError(ValueError):
    """A JSON body the service refuses; the message is safe to show to the client."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JSONInputError(f"Integer with more than {MAX_INT_DIGITS} digits.")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JSONInputError("Number out of range.")
    return value


def _parse_constant(name: str):
    raise JSONInputError(f"{name} is not valid JSON.")


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)


def strict_loads(data: str | bytes | bytearray) -> Any:
    """Parse `data` as JSON, refusing what no handler can use (see the module docstring)."""
    raw = data if isinstance(data, (bytes, bytearray)) else data.encode("utf-8", "surrogatepass")
    try:
        text = raw.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError:
        raise JSONInputError("The body is not valid UTF-8.") from None
    try:
        value = _DECODER.decode(text)
    except JSONInputError:
        raise
    except RecursionError:
        raise JSONInputError(f"JSON nested deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:  # JSONDecodeError, and int() past Python's digit limit
        raise JSONInputError(f"Invalid JSON: {exc}") from None
    _check(value, check_strings=_SURROGATE_ESCAPE.search(raw) is not None)
    return value


def _check(value: Any, *, check_strings: bool) -> None:
    """Depth of containers; with `check_strings`, every key and string must encode as UTF-8."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
            if check_strings:
                for key in item:
                    _encodable(key)
        elif isinstance(item, list):
            children = item
        else:
            if check_strings and isinstance(item, str):
                _encodable(item)
            continue
        if depth > MAX_DEPTH:
            raise JSONInputError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        stack.extend((child, depth + 1) for child in children)


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JSONInputError("A string holds a lone UTF-16 surrogate (not a character).") from None


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, parsing request bodies with `strict_loads`."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_loads(s)
