"""What the SQL console may run, decided on DuckDB's own parse tree (never with regular expressions).

A console statement is exactly one statement that DuckDB classifies as SELECT, or EXPLAIN of one.
Inside it, relations must be registered tables or the statement's own CTEs, and table functions
must be on a short allow-list; that is what keeps `read_*`, `glob`, `*_scan`, replacement scans
of paths and URLs, and DuckDB's system views out of reach. Allowed directories are writable in
DuckDB, so this statement gating is required, not defence in depth.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# `SHOW TABLES` / `SHOW ALL TABLES` / bare `DESCRIBE` list the registered views only.
_SHOW_TABLES = frozenset({'"tables"', "__show_tables_expanded"})
_ALLOWED_HINT = ("only one SELECT statement (WITH, VALUES, FROM-first, PIVOT … IN (…), DESCRIBE, "
                 "SUMMARIZE) or EXPLAIN of one is allowed")
TableKey = tuple[str, str, str]


class Refused(Exception):
    """The statement is not allowed or does not parse; the message is shown to the user."""


def keywords(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Keywords that cannot start a bare identifier (so names using them need quoting)."""
    rows = con.execute("SELECT keyword_name FROM duckdb_keywords() "
                       "WHERE keyword_category <> 'unreserved'").fetchall()
    return frozenset(str(r[0]).lower() for r in rows)


def _needs_quotes(part: str, reserved: frozenset[str]) -> bool:
    return part in reserved or any(not (c.isalnum() or c == "_") for c in part)


def quote_table_names(sql: str, namespace: str, tables: Iterable[TableKey],
                      reserved: frozenset[str]) -> str:
    """Quote registered table names that DuckDB's grammar cannot parse unquoted.

    `default.silver.orders` (reserved word) or `my-ns.silver.orders` (hyphen) become quoted
    identifiers; `layer.name` is handled the same way for tables in `namespace`. Only token starts found by DuckDB's tokenizer are considered, so text inside string
    literals and comments is never touched.
    """
    import duckdb

    spellings: dict[str, str] = {}
    for key in tables:
        if any(_needs_quotes(p, reserved) for p in key):
            spellings[".".join(key)] = ".".join(_quote(p) for p in key)
        if key[0] == namespace and any(_needs_quotes(p, reserved) for p in key[1:]):
            spellings[".".join(key[1:])] = ".".join(_quote(p) for p in key[1:])
    if not spellings:
        return sql
    try:
        tokens = duckdb.tokenize(sql)
    except duckdb.Error:
        return sql
    ordered = sorted(spellings, key=len, reverse=True)
    out: list[str] = []
    done = 0
    for pos, kind in tokens:
        if pos < done or kind not in (duckdb.token_type.identifier, duckdb.token_type.keyword):
            continue
        if pos > 0 and sql[pos - 1] in '."':
            continue
        match = next((s for s in ordered if _matches(sql, pos, s)), None)
        if match is not None:
            out.extend((sql[done:pos], spellings[match]))
            done = pos + len(match)
    out.append(sql[done:])
    return "".join(out)


def _matches(sql: str, pos: int, spelling: str) -> bool:
    end = pos + len(spelling)
    if sql[pos:end].lower() != spelling:
        return False
    return end == len(sql) or not (sql[end].isalnum() or sql[end] in "_-\"")


def _quote(part: str) -> str:
    return '"' + part.replace('"', '""') + '"'


def check(con: duckdb.DuckDBPyConnection, sql: str, namespace: str,
          tables: frozenset[TableKey]) -> str:
    """Return the single statement to run, or raise Refused naming what is not allowed."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise Refused(str(exc)) from None
    if not statements:
        raise Refused("sql must contain a statement")
    if len(statements) != 1:
        types = [s.type.name for s in statements]
        hint = " (a PIVOT needs an explicit IN list)" if types == ["CREATE", "SELECT"] else ""
        raise Refused(f"exactly one statement is allowed, found {len(statements)}{hint}")
    statement = statements[0]
    kind = statement.type.name
    if kind == "EXPLAIN":
        inner = explain_target(statement.query)
        inner_types = [s.type.name for s in con.extract_statements(inner)]
        if inner_types != ["SELECT"]:
            raise Refused(f"EXPLAIN of {' '.join(inner_types) or 'nothing'} is not allowed: "
                          f"{_ALLOWED_HINT}")
    elif kind == "SELECT":
        inner = statement.query
    else:
        raise Refused(f"{kind} statements are not allowed in the console: {_ALLOWED_HINT}")
    check_tree(parse_tree(con, inner), namespace, tables)
    return str(statement.query)


def explain_target(sql: str) -> str:
    """The statement after `EXPLAIN [ANALYZE] [(options)]`, found with DuckDB's tokenizer."""
    import duckdb

    starts = [pos for pos, _kind in duckdb.tokenize(sql)]
    words = [sql[p:q].strip() for p, q in zip(starts, [*starts[1:], len(sql)], strict=True)]
    index = 1
    if index < len(words) and words[index].lower() in ("analyze", "analyse"):
        index += 1
    if index < len(words) and words[index] == "(":
        index = _after_parens(words, index)
    if index >= len(words):
        raise Refused("EXPLAIN needs a statement")
    return sql[starts[index]:]


def _after_parens(words: list[str], start: int) -> int:
    depth = 0
    for index in range(start, len(words)):
        depth += {"(": 1, ")": -1}.get(words[index], 0)
        if depth == 0:
            return index + 1
    return len(words)


def parse_tree(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    tree: dict[str, Any] = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        raise Refused(str(tree.get("error_message") or "the statement cannot be analysed"))
    return tree


def check_tree(tree: dict[str, Any], namespace: str, tables: frozenset[TableKey]) -> None:
    _walk(tree.get("statements", []), namespace, tables, frozenset())


def _walk(node: Any, namespace: str, tables: frozenset[TableKey], scope: frozenset[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, namespace, tables, scope)
        return
    if not isinstance(node, dict):
        return
    if isinstance(node.get("cte_map"), dict):
        scope = _walk_ctes(node["cte_map"].get("map") or [], namespace, tables, scope)
    kind = node.get("type")
    if kind == "BASE_TABLE":
        _check_relation(node, namespace, tables, scope)
    elif kind == "TABLE_FUNCTION":
        _check_function(node.get("function"))
    elif kind == "SHOW_REF" and node.get("query") is None and \
            node.get("table_name") not in _SHOW_TABLES:
        raise Refused("this SHOW statement is not allowed in the console")
    for key, value in node.items():
        if key != "cte_map":
            _walk(value, namespace, tables, scope)


def _walk_ctes(entries: list[dict[str, Any]], namespace: str, tables: frozenset[TableKey],
               scope: frozenset[str]) -> frozenset[str]:
    """Each CTE body sees the CTEs before it and itself (recursion); the query sees them all."""
    for entry in entries:
        scope = scope | {str(entry.get("key", "")).lower()}
        _walk(entry.get("value"), namespace, tables, scope)
    return scope


def _check_relation(node: dict[str, Any], namespace: str, tables: frozenset[TableKey],
                    scope: frozenset[str]) -> None:
    catalog, schema, name = (str(node.get(k) or "") for k in
                             ("catalog_name", "schema_name", "table_name"))
    written = ".".join(p for p in (catalog, schema, name) if p)
    if not catalog and not schema:
        if name.lower() in scope:
            return
        raise Refused(f'unknown table "{written}": name tables as layer.name or '
                      "namespace.layer.name")
    key = (catalog or namespace, schema, name)
    if tuple(p.lower() for p in key) not in tables:
        where = "" if catalog else f' in namespace "{namespace}"'
        raise Refused(f'unknown table "{written}"{where}')


def _check_function(function: Any) -> None:
    if not isinstance(function, dict) or function.get("class") != "FUNCTION":
        raise Refused("this table expression is not allowed in the console")
    name = str(function.get("function_name", "")).lower()
    if function.get("schema") or function.get("catalog") or name not in ALLOWED_TABLE_FUNCTIONS:
        allowed = ", ".join(sorted(ALLOWED_TABLE_FUNCTIONS))
        raise Refused(f"table function {name}() is not allowed in the console "
                      f"(allowed: {allowed})")
