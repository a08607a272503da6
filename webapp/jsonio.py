"""Request bodies in, strictly: what the stdlib parser accepts but no handler can use is refused up front.

Python's `json.loads` takes lone UTF-16 surrogates (`"\\ud800"`, which later fail to encode for
the database or the log line), nesting as deep as its C stack allows, integers of thousands of
digits and `NaN`/`Infinity`. `strict_loads` refuses each with `JSONInputError` (a ValueError),
whose message says what is wrong, so every door answers a 4xx instead of failing later with a
500. Flask's request parsing goes through it (`StrictJSONProvider`), the REST door reads every
/api JSON body with it before any view runs (webapp/rest/api.py), and the GraphQL view decodes
its body with it, so both doors refuse the same inputs.

`BoundedRequest` closes the other gap: a chunked body (no Content-Length) past
MAX_CONTENT_LENGTH is a 413, where Werkzeug would hand the view its first MAX_CONTENT_LENGTH
bytes as if that were the whole body.

Numbers are parsed by the stdlib's C scanner and checked in the one walk that bounds the
depth: a Python callback per number (`parse_int=`) cost six times the parse of a body of
numbers. The scanner itself refuses integers past Python's 4,300-digit conversion limit
before they cost quadratic time. The surrogate check looks at strings only when the raw text
holds an escape for one. Memory: the walk holds one iterator per open container, never a
copy of the items.
"""
from __future__ import annotations

import io
import json
import re
from typing import Any

from flask import Request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import get_input_stream

MAX_DEPTH = 64            # objects and arrays inside one another
MAX_INT_DIGITS = 19       # every integer Delta stores fits a signed 64-bit column
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
SURROGATE_MESSAGE = "A string holds a lone UTF-16 surrogate (not a character)."


class JSONInputError(ValueError):
    """A JSON body the service refuses; the message is safe to show to the client."""


def _parse_constant(name: str):
    raise JSONInputError(f"{name} is not valid JSON.")


_DECODER = json.JSONDecoder(parse_constant=_parse_constant)
_INT_LIMIT = 10**MAX_INT_DIGITS
_TOO_LONG = f"Integer with more than {MAX_INT_DIGITS} digits."
_INF = float("inf")


def strict_loads(data: str | bytes | bytearray) -> Any:
    """Parse `data` as JSON, refusing what no handler can use (see the module docstring)."""
    if isinstance(data, str):
        text = data
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:  # a str holding a raw surrogate (decoded with surrogateescape)
            raise JSONInputError(SURROGATE_MESSAGE) from None
    else:
        raw = data
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise JSONInputError("The body is not valid UTF-8.") from None
    try:
        value = _DECODER.decode(text)
    except JSONInputError:
        raise
    except RecursionError:
        raise JSONInputError(f"JSON nested deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:  # JSONDecodeError, and int() past Python's digit limit
        if "integer string conversion" in str(exc):
            raise JSONInputError(_TOO_LONG) from None
        raise JSONInputError(f"Invalid JSON: {exc}") from None
    _check(value, check_strings=_SURROGATE_ESCAPE.search(raw) is not None)
    return value


def _check(value: Any, *, check_strings: bool) -> None:
    """Depth of containers, integers of at most MAX_INT_DIGITS digits, finite floats; with
    `check_strings`, every key and string must encode as UTF-8. (One loop, no call per item.)"""
    stack = [iter((value,))]
    while stack:
        for item in stack[-1]:
            cls = item.__class__
            if cls is int:
                if not -_INT_LIMIT < item < _INT_LIMIT:
                    raise JSONInputError(_TOO_LONG)
            elif cls is str:
                if check_strings:
                    _encodable(item)
            elif cls is dict or cls is list:
                if len(stack) > MAX_DEPTH:
                    raise JSONInputError(f"JSON nested deeper than {MAX_DEPTH} levels.")
                stack.append(_items(item, check_strings))
                break
            elif cls is float and item in (_INF, -_INF):
                raise JSONInputError("Number out of range.")
        else:
            stack.pop()


def _items(container: dict | list, check_strings: bool):
    if isinstance(container, dict):
        if check_strings:
            for key in container:
                _encodable(key)
        return iter(container.values())
    return iter(container)


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JSONInputError(SURROGATE_MESSAGE) from None


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, parsing request bodies with `strict_loads`."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_loads(s)


class _CappedInput(io.RawIOBase):
    """A chunked request body: 413 once more than `limit` bytes arrive, 400 when it cannot be read."""

    def __init__(self, stream, limit: int):
        self._stream, self._left = stream, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._stream.read(min(len(buffer), self._left + 1))
        except Exception:  # the server's own error for a broken chunk or an early disconnect
            raise BadRequest("The request body could not be read (broken chunked encoding "
                             "or the connection closed early).") from None
        if len(data) > self._left:
            raise RequestEntityTooLarge()
        self._left -= len(data)
        buffer[:len(data)] = data
        return len(data)


class BoundedRequest(Request):
    """Flask's request, refusing (413) a chunked body past MAX_CONTENT_LENGTH instead of cutting it.

    Werkzeug reads a body without Content-Length only up to the limit and stops there without
    an error (its `LimitedStream.readall`), so the view would parse a truncated JSON document,
    form or CSV. With Content-Length, Werkzeug already answers 413 before reading.
    """

    @cached_property
    def stream(self):
        limit = self.max_content_length
        if limit is not None and self.content_length is None and self.environ.get("wsgi.input_terminated"):
            return _CappedInput(self.environ["wsgi.input"], limit)
        return get_input_stream(self.environ, max_content_length=limit)
