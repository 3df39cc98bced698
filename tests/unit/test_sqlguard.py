"""The console statement guard on a real, locked-down DuckDB: what passes, what is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rat.engine import duck, sqlguard

if TYPE_CHECKING:
    import duckdb

TABLES = frozenset({("default", "silver", "orders"), ("default", "silver", "customers"),
                    ("my-ns", "gold", "a-b"), ("default", "gold", "order")})


@pytest.fixture(scope="module")
def cursor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    warehouse = tmp_path_factory.mktemp("wh")
    con = duck.connect(memory_limit="256MB", threads=1, temp_dir=str(warehouse / "tmp"))
    for ns, layer, name in TABLES:
        q = [duck.quote_ident(p) for p in (ns, layer, name)]
        con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {q[0]}")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q[0]}.{q[1]}")
        con.execute(f"CREATE VIEW {'.'.join(q)} AS SELECT 1 AS id, 'x' AS customer")
    duck.lock_down(con, [str(warehouse)])
    cur = con.cursor()
    cur.execute('USE "default"')
    yield cur
    con.close()


def checked(cur: duckdb.DuckDBPyConnection, sql: str) -> str:
    reserved = sqlguard.keywords(cur)
    return sqlguard.check(cur, sqlguard.quote_table_names(sql, "default", TABLES, reserved),
                          "default", TABLES)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM silver.orders",
    "SELECT * FROM default.silver.orders",
    "select o.id from DEFAULT.silver.orders o join silver.customers c using (id)",
    "SELECT * FROM my-ns.gold.a-b",
    "SELECT * FROM gold.order",
    "WITH x AS (SELECT * FROM silver.orders) SELECT * FROM x",
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t",
    "FROM silver.orders",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT * FROM range(3), generate_series(1, 2), unnest([1, 2])",
    "SELECT * FROM RANGE(3)",
    "PIVOT silver.orders ON customer IN ('x') USING count(*)",
    "DESCRIBE silver.orders",
    "SUMMARIZE silver.orders",
    "SHOW TABLES",
    "EXPLAIN SELECT * FROM silver.orders",
    "EXPLAIN ANALYZE SELECT count(*) FROM silver.orders",
    "SELECT 1;",
    "SELECT (SELECT max(id) FROM silver.orders) AS m",
    "SELECT 'read_text(''/etc/passwd'')' AS looks_bad_but_is_a_string",
])
def test_allowed(cursor: duckdb.DuckDBPyConnection, sql: str) -> None:
    statement = checked(cursor, sql)
    cursor.sql(statement).fetchall()


@pytest.mark.parametrize(("sql", "fragment"), [
    ("COPY (SELECT 1) TO 'x.csv'", "COPY statements are not allowed"),
    ("ATTACH '/tmp/x.db' AS x", "ATTACH"),
    ("DETACH \"default\"", "DETACH"),
    ("INSTALL httpfs", "LOAD"),
    ("LOAD httpfs", "LOAD"),
    ("SET enable_external_access = true", "SET"),
    ("RESET memory_limit", "SET"),
    ("PRAGMA threads = 8", "SET"),
    ("CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')", "CREATE"),
    ("CREATE TABLE t AS SELECT 1", "CREATE"),
    ("INSERT INTO silver.orders VALUES (1, 'x')", "INSERT"),
    ("DROP VIEW silver.orders", "DROP"),
    ("EXPORT DATABASE '/tmp/x'", "EXPORT"),
    ("CALL pragma_version()", "CALL"),
    ("CHECKPOINT", "CALL"),
    ("SELECT 1; DROP VIEW silver.orders", "exactly one statement"),
    ("PIVOT silver.orders ON customer USING count(*)", "IN list"),
    ("EXPLAIN COPY (SELECT 1) TO 'x'", "EXPLAIN of COPY"),
    ("SELECT * FROM read_text('/etc/passwd')", "read_text()"),
    ("SELECT * FROM read_csv_auto('/proc/self/environ')", "read_csv_auto()"),
    ("SELECT * FROM glob('/etc/*')", "glob()"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv()"),
    ("SELECT * FROM duckdb_secrets()", "duckdb_secrets()"),
    ("SELECT * FROM query('SELECT 1')", "query()"),
    ("SELECT * FROM main.range(3)", "range()"),
    ("SELECT * FROM iceberg_scan('/tmp/x')", "iceberg_scan()"),
    ("SELECT * FROM '/etc/passwd'", 'unknown table "/etc/passwd"'),
    ("SELECT * FROM 'https://example.com/x.csv'", "unknown table"),
    ("SELECT * FROM duckdb_settings", 'unknown table "duckdb_settings"'),
    ("SELECT * FROM system.main.duckdb_settings", "unknown table"),
    ("SELECT * FROM information_schema.tables", "unknown table"),
    ("SELECT * FROM silver.nope", 'unknown table "silver.nope" in namespace "default"'),
    ("SELECT (SELECT content FROM read_text('/etc/passwd'))", "read_text()"),
    ("WITH a AS (SELECT * FROM duckdb_settings), duckdb_settings AS (SELECT 1) "
     "SELECT * FROM a", "duckdb_settings"),
    ("SELECT * FROM (WITH duckdb_settings AS (SELECT 1) SELECT 1), duckdb_settings",
     "duckdb_settings"),
    ("SHOW databases", "SHOW"),
    ("SELECT * FROM", "syntax error"),
    ("", "must contain a statement"),
])
def test_refused(cursor: duckdb.DuckDBPyConnection, sql: str, fragment: str) -> None:
    with pytest.raises(sqlguard.Refused) as info:
        checked(cursor, sql)
    assert fragment in str(info.value)


def test_syntax_error_keeps_duckdb_message_and_position(cursor: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(sqlguard.Refused) as info:
        checked(cursor, "SELECT id FROM silver.orders WHER id = 1")
    message = str(info.value)
    assert message.startswith('Parser Error: syntax error at or near "id"')
    assert "LINE 1: SELECT id FROM" in message
    assert "^" in message


def test_quoting_leaves_strings_and_comments_alone() -> None:
    reserved = frozenset({"default", "order"})
    sql = "SELECT 'default.silver.orders' -- default.silver.orders\nFROM default.silver.orders"
    out = sqlguard.quote_table_names(sql, "default", TABLES, reserved)
    assert out == ("SELECT 'default.silver.orders' -- default.silver.orders\n"
                   'FROM "default"."silver"."orders"')
    assert sqlguard.quote_table_names("SELECT * FROM x.default.silver.orders", "default",
                                      TABLES, reserved) == "SELECT * FROM x.default.silver.orders"


def test_explain_target() -> None:
    assert sqlguard.explain_target("EXPLAIN ANALYZE SELECT 1") == "SELECT 1"
    assert sqlguard.explain_target("explain (FORMAT json, ANALYZE) FROM t") == "FROM t"
    with pytest.raises(sqlguard.Refused):
        sqlguard.explain_target("EXPLAIN")


def test_copy_into_an_allowed_directory_is_refused_before_duckdb_sees_it(
        cursor: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    # Allowed directories are writable in DuckDB (P§21): only statement gating stops this.
    with pytest.raises(sqlguard.Refused):
        checked(cursor, f"COPY (SELECT 1) TO '{tmp_path}/evil.csv'")
    assert not (tmp_path / "evil.csv").exists()
