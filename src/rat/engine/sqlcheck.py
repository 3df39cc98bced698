"""Statement checks done with DuckDB's own tokenizer and parser, never with regular expressions."""

from __future__ import annotations

from rat.engine.render import CompileError


def _tokens(sql: str) -> list[tuple[int, str]]:
    import duckdb

    return [(offset, kind.name) for offset, kind in duckdb.tokenize(sql)]


def statement_text(sql: str) -> str:
    """`sql` up to the end of its last token that is not a `;`.

    No trailing comments, semicolons or whitespace remain, so the result can be wrapped as
    `(...)` or `... FROM (...)`.

    DuckDB's tokenizer skips comments and reports token starts only, so the last token's end is
    found as the first position after it where the tail holds nothing but comments, semicolons
    and whitespace while the head still lexes to that token alone (an unterminated string or
    quoted identifier lexes to nothing, so a `--` inside a literal is never taken as a comment).
    """
    tokens = _tokens(sql)
    significant = [(o, k) for o, k in tokens if not (k == "operator" and sql[o] == ";")]
    if not significant:
        return ""
    start, kind = significant[-1]
    for end in range(start + 1, len(sql) + 1):
        if end < len(sql) and not _may_follow_token(sql, end):
            continue
        if _only_semicolons(sql[end:]) and _tokens(sql[start:end]) == [(0, kind)]:
            return sql[:end]
    return sql  # not reached for text DuckDB can tokenize; the parser reports what it finds


def _may_follow_token(sql: str, pos: int) -> bool:
    """A token can end before whitespace, a `;` or a comment opener."""
    return sql[pos].isspace() or sql[pos] == ";" or sql[pos:pos + 2] in ("--", "/*")


def _only_semicolons(tail: str) -> bool:
    return all(k == "operator" and tail[o] == ";" for o, k in _tokens(tail))


def statement_types(sql: str) -> list[str]:
    """Statement types as DuckDB's parser classifies them; ParserException propagates."""
    import duckdb

    return [s.type.name for s in duckdb.extract_statements(sql)]


def single_select(sql: str) -> str:
    """Return the text of `sql` if it is exactly one SELECT-type statement.

    The text ends at the statement's last token (see `statement_text`), so every wrapper the
    engine puts around it is safe.
    """
    import duckdb

    try:
        cleaned = statement_text(sql)
    except duckdb.Error as exc:
        raise CompileError(f"SQL syntax error: {exc}") from None
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
