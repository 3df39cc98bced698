"""JSON encoding of DuckDB result values, chosen per column from DuckDB's type (P§12).

Integers are numbers (HUGEINT as strings), DECIMAL exact numbers, non-finite floats the strings
`NaN`/`Infinity`/`-Infinity`, times ISO-8601, BLOB base64, LIST/STRUCT arrays/objects and MAP
`[{key, value}]`. Columns whose Python values msgspec already encodes that way get no converter,
so wide results of plain types cost nothing extra.
"""

from __future__ import annotations

import base64
import decimal
import math
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

if TYPE_CHECKING:
    from duckdb.sqltypes import DuckDBPyType

Convert = Callable[[Any], Any]
# DECIMAL values leave as exact JSON numbers, as the API promises.
JSON = msgspec.json.Encoder(decimal_format="number")


def _float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _nullable(convert: Convert) -> Convert:
    return lambda v: None if v is None else convert(v)


def _list(item: Convert | None) -> Convert | None:
    if item is None:
        return None
    return _nullable(lambda values: [item(v) for v in values])


def _struct(fields: list[tuple[str, Convert | None]]) -> Convert | None:
    if all(c is None for _n, c in fields):
        return None
    converters = {n: c for n, c in fields if c is not None}
    return _nullable(lambda row: {k: converters[k](v) if k in converters else v
                                  for k, v in row.items()})


def _map(key: Convert | None, value: Convert | None) -> Convert:
    k = key or (lambda x: x)
    v = value or (lambda x: x)
    return _nullable(lambda pairs: [{"key": k(a), "value": v(b)} for a, b in pairs.items()])


def converter(dtype: DuckDBPyType) -> Convert | None:
    """How to turn values of `dtype` into JSON-ready values; None when none is needed."""
    kind = dtype.id
    children: list[tuple[str, Any]] = [(str(n), t) for n, t in dtype.children] \
        if kind in _NESTED else []
    if kind in ("hugeint", "uhugeint", "bignum", "varint"):
        return _nullable(str)
    if kind in ("float", "double"):
        return _nullable(_float)
    if kind in ("list", "array"):
        return _list(converter(children[0][1]))
    if kind == "struct":
        return _struct([(n, converter(t)) for n, t in children])
    if kind == "map":
        return _map(converter(children[0][1]), converter(children[1][1]))
    if kind == "union":
        return json_value
    return None


_NESTED = ("list", "array", "struct", "map", "union")


def row_encoder(names: list[str], types: list[DuckDBPyType]
                ) -> Callable[[tuple[Any, ...]], dict[str, Any]]:
    """A function turning one result tuple into the JSON object for that row."""
    converters = [converter(t) for t in types]
    if all(c is None for c in converters):
        return lambda row: dict(zip(names, row, strict=True))
    pairs = list(zip(names, converters, strict=True))
    return lambda row: {n: (c(v) if c is not None else v)
                        for (n, c), v in zip(pairs, row, strict=True)}


def unique_names(names: list[str]) -> list[str]:
    """Column names made unique (`a`, `a_1`, …) so rows can be keyed by name."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 0
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def json_value(value: Any) -> Any:
    """Encode one value of unknown DuckDB type (UNION members, expressions outside a result)."""
    converters: list[tuple[type | tuple[type, ...], Convert]] = [
        (bool, lambda v: v),
        (int, lambda v: v if -(2**63) <= v < 2**63 else str(v)),
        (float, _float),
        (decimal.Decimal, lambda v: v),
        ((datetime, date, time), lambda v: v.isoformat()),
        (timedelta, str),
        (bytes, lambda v: base64.b64encode(v).decode()),
        (UUID, str),
        ((list, tuple), lambda v: [json_value(x) for x in v]),
        (dict, lambda v: {str(k): json_value(x) for k, x in v.items()}),
    ]
    if value is None:
        return None
    for kinds, convert in converters:
        if isinstance(value, kinds):
            return convert(value)
    return value if isinstance(value, str) else str(value)
