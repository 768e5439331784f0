"""JSON encoding for responses built as plain data (the catalog reads): orjson, with a fallback.

orjson refuses two things PostgreSQL's jsonb stores happily: nesting deeper than 255 levels and
integers beyond 64 bits. One product saved with such `metadata` (before it was validated, or by a
path that does not validate) would turn every catalog page that shows it into a 500. When orjson
refuses, the fallback writes the refused containers itself, with a stack instead of recursion,
and hands every part orjson accepts back to orjson: the output is the same JSON orjson would
have written, had it no limits. Options that reshape containers (OPT_SORT_KEYS, OPT_INDENT_2)
apply only to the parts orjson writes; the callers use neither.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

logger = logging.getLogger(__name__)


class _Encoded(bytes):
    """Output already written, queued on the stack among values still to encode."""


def json_bytes(data: Any, *, option: int | None = None) -> bytes:
    """`orjson.dumps(data, option=option)`, which never fails on data jsonb could hold."""
    try:
        return orjson.dumps(data, option=option)
    except orjson.JSONEncodeError as error:
        logger.warning(
            "response data orjson cannot encode (too deep, or an integer beyond 64 bits); "
            "encoded piecewise",
            extra={"error": str(error)},
        )
        return _encode_piecewise(data, option=option)


def _encode_piecewise(data: Any, *, option: int | None) -> bytes:
    out: list[bytes] = []
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, _Encoded):
            out.append(item)
            continue
        try:
            out.append(orjson.dumps(item, option=option))
            continue
        except orjson.JSONEncodeError:
            if isinstance(item, dict):
                pieces = _object_pieces(item, option=option)
            elif isinstance(item, list | tuple):
                pieces = _array_pieces(item)
            elif isinstance(item, int):  # beyond 64 bits; a JSON number has no size limit
                out.append(str(int(item)).encode())
                continue
            else:  # something no JSON encoder could write: a bug, as with orjson alone
                raise
        stack.extend(reversed(pieces))
    return b"".join(out)


def _object_pieces(item: dict[Any, Any], *, option: int | None) -> list[Any]:
    pieces: list[Any] = [_Encoded(b"{")]
    for position, (key, value) in enumerate(item.items()):
        if not isinstance(key, str):  # as orjson.dumps refuses it (JSON keys are strings)
            raise orjson.JSONEncodeError("Dict key must be str")
        separator = b"," if position else b""
        pieces += [_Encoded(separator + orjson.dumps(key, option=option) + b":"), value]
    pieces.append(_Encoded(b"}"))
    return pieces


def _array_pieces(item: list[Any] | tuple[Any, ...]) -> list[Any]:
    pieces: list[Any] = [_Encoded(b"[")]
    for position, value in enumerate(item):
        if position:
            pieces.append(_Encoded(b","))
        pieces.append(value)
    pieces.append(_Encoded(b"]"))
    return pieces
