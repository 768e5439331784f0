"""The JSON parser of every API endpoint (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]).

API.md, Conventions: malformed or non-UTF-8 JSON, and JSON nested deeper than 64 levels, is a 400
`parse_error`, never a 500. DRF's own parser hands the body to `json.load`, which recurses once per
level: a body of 100,000 `[` is a RecursionError (a 500). Here the nesting is measured first, by a
linear scan of the bytes that does not recurse, and only a body within the limit is parsed, with
the standard library (exact integers of any size; orjson would turn those beyond 64 bits into
floats). A NUL character or a lone surrogate is refused too: PostgreSQL stores neither in text or
jsonb, so either would fail later as a database error.

The size limit (DATA_UPLOAD_MAX_MEMORY_SIZE → 413) is not checked here: DRF reads JSON bodies
through `request.body`, where Django enforces it before any parser runs (common/exceptions.py
maps its `RequestDataTooBig`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

JSON_MAX_DEPTH = 64  # API.md, Conventions

# A JSON string, in bytes: linear even when unterminated (malformed input), since the possessive
# loops never backtrack and the match ends at the closing quote or at the end of the body. UTF-8
# continuation bytes never equal `"` or `\`, so multi-byte characters need no care.
_STRING = re.compile(rb'"(?:[^"\\]++|\\[\s\S]?)*+(?:"|\Z)')
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_OPENING = b"[{"
# In a valid UTF-8 body, NUL and surrogates can only arrive as `\u` escapes. A body without one
# needs no walk (a false alarm, such as an escaped backslash before `u0000`, only costs the walk).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def _nesting_exceeds(body: bytes, limit: int) -> bool:
    """Does any array or object in `body` sit deeper than `limit` levels? Without parsing."""
    depth = 0
    # Brackets inside strings are text, not structure: the strings go first.
    for bracket in _STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        depth += 1 if bracket in _OPENING else -1
        if depth > limit:
            return True
    return False


def json_problem(value: object, *, max_depth: int) -> str | None:
    """Why a parsed JSON value cannot be stored, or None when it can.

    Arrays and objects may nest `max_depth` levels (the value itself is level 1); no string or
    key may hold a NUL character or a lone surrogate (PostgreSQL refuses both in text and jsonb).
    Walks with a stack of its own, so a value nested thousands of levels deep is checked without
    recursion.
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            found = _UNSTORABLE_CHARACTER.search(item)
            if found is not None:
                if found.group() == "\x00":
                    return "contains a NUL character (\\u0000)"
                return "contains a lone surrogate (an unpaired \\ud800-\\udfff escape)"
        elif isinstance(item, dict | list):
            if depth > max_depth:
                return f"is nested deeper than {max_depth} levels"
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):  # 1e400: neither a JSON value nor a jsonb number
        raise ValueError(f"number out of range: {literal[:40]}")
    return number


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


class JSONParser(parsers.JSONParser):
    """Strict JSON: UTF-8, at most `JSON_MAX_DEPTH` levels, finite numbers, storable strings."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        body: bytes = stream.read()
        try:
            # RFC 8259 §8.1: JSON between systems is UTF-8, whatever `charset` the client names.
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ParseError(
                f"JSON parse error - the body is not UTF-8 ({error.reason})."
            ) from None
        if _nesting_exceeds(body, JSON_MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {JSON_MAX_DEPTH} levels.")
        try:
            data = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
        except ValueError as error:  # JSONDecodeError, and the two hooks above
            raise ParseError(f"JSON parse error - {error}") from None
        if _SUSPECT_ESCAPE.search(body):
            problem = json_problem(data, max_depth=JSON_MAX_DEPTH)
            if problem is not None:
                raise ParseError(f"JSON parse error - the body {problem}.")
        return data
