"""SQL templates: sandboxed, StrictUndefined, bounded, with the spec's globals."""

from __future__ import annotations

import pytest

from rat.engine.render import (
    CompileError,
    RenderContext,
    bare_ref_lines,
    constant_args,
    dynamic_call_lines,
    render,
)
from rat.engine.sqlcheck import single_select


def ctx(**overrides: object) -> RenderContext:
    values: dict[str, object] = {
        "namespace": "default", "layer": "silver", "name": "orders",
        "merge_strategy": "incremental", "run_started_at": "2026-11-22T10:00:00.123456+00:00",
        "ref": lambda n: f"<{n}>", "landing_zone": lambda z: f"/lz/{z}/*",
        "this": lambda: "<this>", "watermark_value": None}
    values.update(overrides)
    return RenderContext(**values)  # type: ignore[arg-type]


def test_globals() -> None:
    out = render("SELECT * FROM {{ ref('bronze.x') }} -- {{ run_started_at }} {{ is_incremental() }}"
                 " {{ is_scd2() }} {{ landing_zone('z') }}", ctx())
    assert out == ("SELECT * FROM <bronze.x> -- 2026-11-22T10:00:00.123456+00:00 True False"
                   " /lz/z/*")


def test_canonical_incremental_pattern_is_safe_on_first_run() -> None:
    def missing() -> str:
        raise CompileError("this: table does not exist yet")

    src = ("SELECT * FROM {{ ref('bronze.o') }}\n"
           "{% if is_incremental() and watermark_value %} WHERE u > '{{ watermark_value }}' "
           "FROM {{ this }}{% endif %}")
    assert "WHERE" not in render(src, ctx(this=missing))
    assert "WHERE u > '5'" in render(src, ctx(watermark_value="5"))


def test_undefined_names_fail_with_a_message() -> None:
    with pytest.raises(CompileError, match="nope"):
        render("SELECT {{ nope }}", ctx())


def test_syntax_errors_report_the_line() -> None:
    with pytest.raises(CompileError, match="line 3"):
        render("SELECT 1\n\n{% if %}", ctx())


def test_sandbox_blocks_attribute_escapes() -> None:
    with pytest.raises(CompileError):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", ctx())


def test_runaway_template_hits_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rat.engine.render.RENDER_SECONDS", 0.2)
    with pytest.raises(CompileError, match="longer than"):
        render("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
               "{% endfor %}", ctx())


def test_output_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rat.engine.render.MAX_OUTPUT_BYTES", 1000)
    with pytest.raises(CompileError, match="larger than"):
        render("{% for i in range(5000) %}xx{% endfor %}", ctx())


def test_ast_helpers() -> None:
    src = ("SELECT * FROM {{ ref('bronze.a') }} JOIN {{ ref(x) }}\n"
           "-- ref(in_comment)\nSELECT ref(bare)\n{{ landing_zone('z') }}")
    assert constant_args(src, "ref") == ["bronze.a"]
    assert constant_args(src, "landing_zone") == ["z"]
    assert dynamic_call_lines(src) == [(1, "ref")]
    assert bare_ref_lines(src) == [3]


@pytest.mark.parametrize("sql", ["SELECT 1;", "WITH a AS (SELECT 1) SELECT * FROM a",
                                 "FROM range(3)", "VALUES (1), (2)"])
def test_single_select_accepts(sql: str) -> None:
    assert not single_select(sql).endswith(";")


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT 1; SELECT 2", "exactly one"), ("CREATE TABLE t (a INT)", "SELECT"),
    ("COPY t TO 'x.csv'", "SELECT"), ("SELEC 1", "syntax"), ("   ;  ", "empty")])
def test_single_select_refuses(sql: str, message: str) -> None:
    with pytest.raises(CompileError, match=message):
        single_select(sql)


@pytest.mark.parametrize(("sql", "text"), [
    ("SELECT 1 AS id -- trailing comment", "SELECT 1 AS id"),
    ("SELECT 1 AS id\n-- WHERE id > 1\n", "SELECT 1 AS id"),
    ("SELECT 1 AS id;\n-- after semicolon", "SELECT 1 AS id"),
    ("SELECT 1 /* a */ ; /* b */ ; -- c\n ;\n\t", "SELECT 1"),
    ("-- header\nSELECT 1 /* multi\nline */", "-- header\nSELECT 1"),
    ("SELECT '--' AS a -- real", "SELECT '--' AS a"),
    ("SELECT 'a -- b' -- c", "SELECT 'a -- b'"),
    ("SELECT E'x\\' -- ' AS e --c", "SELECT E'x\\' -- ' AS e"),
    ("SELECT $$ -- $$ /* c */", "SELECT $$ -- $$"),
    ('SELECT 1 AS "x; -- y";', 'SELECT 1 AS "x; -- y"'),
    ("SELECT 1.5e3--x", "SELECT 1.5e3"),
    ("SELECT (1)/*x*/;", "SELECT (1)"),
])
def test_single_select_ends_at_the_last_token(sql: str, text: str) -> None:
    import duckdb

    assert single_select(sql) == text
    assert duckdb.sql(f"SELECT count(*) FROM ({single_select(sql)})").fetchone() == (1,)


@pytest.mark.parametrize("sql", ["-- only a comment", "/* x */ ; -- y", ""])
def test_comment_only_sql_is_empty(sql: str) -> None:
    with pytest.raises(CompileError, match="empty"):
        single_select(sql)


def test_second_statement_after_a_comment_is_refused() -> None:
    with pytest.raises(CompileError, match="exactly one"):
        single_select("SELECT 1 -- a\n; SELECT 2 -- b")
