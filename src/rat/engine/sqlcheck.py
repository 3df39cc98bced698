"""Statement checks done with DuckDB's own parser, never with regular expressions."""

from __future__ import annotations

import re

from rat.engine.render import CompileError

_TRAILING = re.compile(r"[\s;]+$")


def strip_trailing_semicolons(sql: str) -> str:
    return _TRAILING.sub("", sql)


def statement_types(sql: str) -> list[str]:
    """Statement types as DuckDB's parser classifies them; ParserException propagates."""
    import duckdb

    return [s.type.name for s in duckdb.extract_statements(sql)]


def single_select(sql: str) -> str:
    """Return `sql` without trailing semicolons if it is exactly one SELECT-type statement."""
    import duckdb

    cleaned = strip_trailing_semicolons(sql)
    if not cleaned.strip():
        raise CompileError("the compiled SQL is empty")
    try:
        types = statement_types(cleaned)
    except duckdb.Error as exc:
        raise CompileError(f"SQL syntax error: {exc}") from None
    if len(types) != 1:
        raise CompileError(f"the compiled SQL must be exactly one SELECT statement, found {len(types)}")
    if types[0] != "SELECT":
        raise CompileError(f"the compiled SQL must be a SELECT statement, not {types[0]}")
    return cleaned
