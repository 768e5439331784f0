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

`JSONInputSerializer` is the other half of strict JSON, for input serializers of JSON bodies: a
value is taken only in the JSON type the OpenAPI schema documents for its field. DRF's fields are
lenient on purpose (a CharField takes `0` as "0", an IntegerField "12", a BooleanField "yes", a
UUIDField an integer); the schema promises clients a string, an integer, a boolean, so anything
else is a 400 `invalid` naming the field, as the schema says it is (a reference by an integer
primary key is documented as an integer too: `"category": "5"` is DRF's `incorrect_type`).
Likewise a string's `maxLength` holds for the string as sent, before DRF trims it.
`QueryIntegerField` is the same for an integer query parameter: digits, optionally signed (DRF
also takes `5.0` and ` 5`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import IO, Any

from django.db import models
from rest_framework import parsers, serializers
from rest_framework.exceptions import ErrorDetail, ParseError, ValidationError

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


def _too_long(field: serializers.Field[Any, Any, Any, Any], value: object) -> bool:
    """A trimmed CharField checks `max_length` after trimming; the schema's `maxLength` is about
    the value as sent, and so is this."""
    return (
        isinstance(field, serializers.CharField)
        and field.trim_whitespace
        and field.max_length is not None
        and isinstance(value, str)
        and len(value) > field.max_length
    )


def _integer_key(field: serializers.Field[Any, Any, Any, Any]) -> bool:
    """Is `field` a reference by an integer primary key (documented as an integer)?"""
    if not isinstance(field, serializers.PrimaryKeyRelatedField) or field.pk_field is not None:
        return False
    queryset = field.get_queryset()
    return queryset is not None and isinstance(queryset.model._meta.pk, models.IntegerField)


def _json_type_ok(field: serializers.Field[Any, Any, Any, Any], value: object) -> bool:
    """Is `value` of the JSON type the schema documents for `field`? (None is left to the
    field's `allow_null`; other fields, lists and objects are left to DRF, which is strict
    about them already.)"""
    if value is None:
        return True
    if isinstance(field, serializers.BooleanField):
        return isinstance(value, bool)
    if isinstance(field, serializers.IntegerField) or _integer_key(field):
        # JSON Schema's integer: 3 and 3.0 alike, never true or "3".
        integral_float = isinstance(value, float) and value.is_integer()
        return not isinstance(value, bool) and (isinstance(value, int) or integral_float)
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return not isinstance(value, bool) and isinstance(value, int | float | str)
    if isinstance(field, serializers.CharField | serializers.UUIDField):
        return isinstance(value, str)
    return True


def _wrong_type(field: serializers.Field[Any, Any, Any, Any], value: object) -> ErrorDetail:
    """The field's own error for a value of the wrong type: `invalid`, or for a reference by
    primary key DRF's `incorrect_type` (what it answers for a list or a boolean there)."""
    if "invalid" in field.error_messages:
        return ErrorDetail(str(field.error_messages["invalid"]), code="invalid")
    message = field.error_messages["incorrect_type"].format(data_type=type(value).__name__)
    return ErrorDetail(message, code="incorrect_type")


# An input serializer of a JSON body that takes each value only in its documented JSON type
# (see the module's doc); nested serializers check their own fields when they are one too. (A
# comment, not a docstring: the schema would show a docstring as every subclass's description.)
class JSONInputSerializer(serializers.Serializer[dict[str, Any]]):
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping):
            wrong: dict[str, list[ErrorDetail]] = {}
            for name, field in self.fields.items():
                if field.read_only or name not in data:
                    continue
                if not _json_type_ok(field, data[name]):
                    wrong[name] = [_wrong_type(field, data[name])]
                elif _too_long(field, data[name]):
                    limit = getattr(field, "max_length", None)
                    message = field.error_messages["max_length"].format(max_length=limit)
                    wrong[name] = [ErrorDetail(message, code="max_length")]
            if wrong:
                raise ValidationError(wrong)
        result: dict[str, Any] = super().to_internal_value(data)
        return result


class QueryIntegerField(serializers.IntegerField):
    """An integer query parameter, as the schema's `integer` reads it: digits, optionally signed."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and not re.fullmatch(r"[-+]?[0-9]+", data):
            self.fail("invalid")
        value: int = super().to_internal_value(data)
        return value
