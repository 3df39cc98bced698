"""Quality tests: definitions (custom files, column tests, freshness, SCD2 invariants) and runs.

Every test is a Jinja SQL template whose rows are violations: it passes when it returns no rows.
Built-in tests are generated as templates over `{{ this }}`, so runs, previews and ad-hoc test
runs bind `this` to whatever they check (staged snapshot, preview result, published table) and
the compiled SQL a user sees is exactly what ran.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import msgspec

from rat.core.specs import QualityOutcome
from rat.engine.config import PipelineConfig
from rat.engine.duck import quote_ident, sql_str
from rat.engine.render import CompileError, RenderContext, render
from rat.engine.sqlcheck import single_select

if TYPE_CHECKING:
    import duckdb

TEST_DIR = "tests/quality/"
SAMPLE_ROWS = 5
CELL_CHARS = 200
TEST_KEYS = ("severity", "description", "tags", "remediation")
SEVERITIES = {"error": "error", "warn": "warn", "warning": "warn"}
_ANNOTATION = re.compile(r"^\s*--\s*@([a-z_]+)\s*:\s*(.*?)\s*$")
_TEST_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


class TestDef(msgspec.Struct, frozen=True, kw_only=True):
    """One quality test. `sql` is a Jinja template whose rows are violations."""

    name: str
    kind: str
    severity: str
    sql: str
    description: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    remediation: str = ""
    path: str | None = None
    warn_after: int | None = None
    error_after: int | None = None


class TestFile(msgspec.Struct, frozen=True, kw_only=True):
    """A custom test file split into its annotations and its SQL body."""

    severity: str = "error"
    description: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    remediation: str = ""
    body: str = ""
    warnings: list[str] = msgspec.field(default_factory=list)


def test_name(path: str) -> str | None:
    """The test name of `tests/quality/<name>.sql`, or None for any other path."""
    if not path.startswith(TEST_DIR) or not path.endswith(".sql"):
        return None
    stem = path[len(TEST_DIR):-4]
    return stem if "/" not in stem else None


def valid_test_name(name: str) -> bool:
    return len(name) <= 128 and bool(_TEST_NAME.match(name))


def parse_test_file(text: str) -> TestFile:
    """Annotations may appear anywhere in a test file; their lines become blank in the body."""
    values: dict[str, str] = {}
    warnings: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _ANNOTATION.match(line)
        if match is None:
            continue
        key, value = match.group(1), match.group(2)
        if key in TEST_KEYS:
            values[key] = value
            lines[index] = ""
        else:
            warnings.append(f"line {index + 1}: unknown annotation @{key}")
    severity = values.get("severity", "error").lower()
    if severity not in SEVERITIES:
        warnings.append(f"@severity {values['severity']!r} is not error or warn; treated as error")
    return TestFile(
        severity=SEVERITIES.get(severity, "error"), description=values.get("description", ""),
        tags=split_tags(values.get("tags", "")), remediation=values.get("remediation", ""),
        body="\n".join(lines), warnings=warnings)


def split_tags(text: str) -> list[str]:
    return [t.strip().lower() for t in text.split(",") if t.strip()]


def render_test_file(body: str, severity: str, description: str, tags: list[str],
                     remediation: str) -> str:
    """A test file with the annotation header written from the given fields."""
    parsed = parse_test_file(body)
    header = [f"-- @severity: {severity}"]
    for key, value in (("description", description), ("tags", ", ".join(tags)),
                       ("remediation", remediation)):
        if value:
            header.append(f"-- @{key}: {' '.join(value.split())}")
    return "\n".join(header) + "\n" + parsed.body.strip("\n") + "\n"


def custom_tests(files: dict[str, str]) -> list[TestDef]:
    tests = []
    for path in sorted(files):
        name = test_name(path)
        if name is None:
            continue
        parsed = parse_test_file(files[path])
        tests.append(TestDef(name=name, kind="custom", severity=parsed.severity, sql=parsed.body,
                             description=parsed.description, tags=parsed.tags,
                             remediation=parsed.remediation, path=path))
    return sorted(tests, key=lambda t: t.name)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return sql_str(str(value))


def _checked_relation(config: PipelineConfig) -> str:
    """What column tests read: every row, or only the open rows of an scd2 table."""
    if config.merge_strategy == "scd2":
        return f"(SELECT * FROM {{{{ this }}}} WHERE {quote_ident(config.scd_valid_to)} IS NULL)"
    return "{{ this }}"


def _relationship_ref(target: str) -> str:
    return "{{ ref(" + sql_str(target) + ") }}"


def _column_sql(test: str, column: str, args: dict[str, Any], relation: str) -> str:
    col = quote_ident(column)
    if test == "not_null":
        return f"SELECT * FROM {relation} AS t WHERE {col} IS NULL"
    if test == "unique":
        return (f"SELECT {col}, count(*) AS occurrences FROM {relation} AS t "
                f"WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1")
    if test == "accepted_values":
        values = ", ".join(_literal(v) for v in args.get("values") or [])
        return f"SELECT * FROM {relation} AS t WHERE {col} IS NOT NULL AND {col} NOT IN ({values})"
    if test in ("positive", "non_negative"):
        op = "<=" if test == "positive" else "<"
        return f"SELECT * FROM {relation} AS t WHERE {col} {op} 0"
    field = quote_ident(str(args.get("field")))
    return (f"SELECT t.* FROM {relation} AS t WHERE t.{col} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {_relationship_ref(str(args.get('to')))} AS r "
            f"WHERE r.{field} = t.{col})")


def column_tests(config: PipelineConfig) -> list[TestDef]:
    relation = _checked_relation(config)
    return [TestDef(name=f"{column.name}__{test.name}", kind="column", severity=test.severity,
                    sql=_column_sql(test.name, column.name, test.args, relation),
                    description=f"{test.name.replace('_', ' ')} on {column.name}")
            for column in config.columns for test in column.tests]


def freshness_test(config: PipelineConfig) -> TestDef | None:
    """Age of the newest `field` value at run start; only with a field (the monitor does the rest)."""
    fresh = config.freshness
    if fresh is None or not fresh.field:
        return None
    threshold = min(t for t in (fresh.warn_after_seconds, fresh.error_after_seconds)
                    if t is not None)
    col = quote_ident(fresh.field)
    sql = (f"SELECT age_seconds, newest FROM (SELECT max({col}) AS newest, "
           f"epoch(CAST('{{{{ run_started_at }}}}' AS TIMESTAMPTZ)) - epoch(max({col})) "
           f"AS age_seconds FROM {{{{ this }}}}) AS f "
           f"WHERE age_seconds IS NULL OR age_seconds > {threshold}")
    return TestDef(name="freshness", kind="freshness",
                   severity="error" if fresh.error_after_seconds is not None else "warn",
                   sql=sql, description=f"newest {fresh.field} is recent enough",
                   warn_after=fresh.warn_after_seconds, error_after=fresh.error_after_seconds)


def invariant_tests(config: PipelineConfig, touched: str | None = None) -> list[TestDef]:
    """SCD2 invariants, on the keys in relation `touched` (the run's batch) or on every key."""
    if config.merge_strategy != "scd2" or not config.unique_key:
        return []
    keys = ", ".join(quote_ident(k) for k in config.unique_key)
    vf, vt = quote_ident(config.scd_valid_from), quote_ident(config.scd_valid_to)
    scope = "{{ this }}"
    if touched:
        match = " AND ".join(f"b.{quote_ident(k)} = s.{quote_ident(k)}" for k in config.unique_key)
        scope = f"(SELECT * FROM {{{{ this }}}} AS s WHERE EXISTS (SELECT 1 FROM {touched} AS b WHERE {match}))"
    return [
        TestDef(name="scd2_one_open_row", kind="invariant", severity="error",
                description="at most one open row per key",
                sql=f"SELECT {keys}, count(*) AS open_rows FROM {scope} AS t WHERE {vt} IS NULL "
                    f"GROUP BY {keys} HAVING count(*) > 1"),
        TestDef(name="scd2_no_overlap", kind="invariant", severity="error",
                description="validity intervals of a key do not overlap",
                sql=f"SELECT * FROM (SELECT {keys}, {vf}, {vt}, lead({vf}) OVER (PARTITION BY "
                    f"{keys} ORDER BY {vf}) AS next_valid_from FROM {scope} AS t) AS w "
                    f"WHERE next_valid_from IS NOT NULL AND ({vt} IS NULL OR {vt} > next_valid_from)"),
        TestDef(name="scd2_valid_range", kind="invariant", severity="error",
                description="closed rows have valid_from before valid_to",
                sql=f"SELECT * FROM {scope} AS t WHERE {vt} IS NOT NULL AND {vf} >= {vt}"),
    ]


def collect(files: dict[str, str], config: PipelineConfig, *,
            touched: str | None = None) -> list[TestDef]:
    """All tests in execution order: invariants, column tests, freshness, custom by name."""
    fresh = freshness_test(config)
    return [*invariant_tests(config, touched), *column_tests(config),
            *([fresh] if fresh else []), *custom_tests(files)]


class _Timeout:
    """Interrupt the connection's running statement after `seconds` (DuckDB has no timeout)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, seconds: float) -> None:
        self.fired = False
        self._con = con
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        self._con.interrupt()

    @contextmanager
    def running(self) -> Iterator[None]:
        self._timer.start()
        try:
            yield
        finally:
            self._timer.cancel()


def cell(value: Any) -> Any:
    from rat.engine.query import json_value

    out = json_value(value)
    if isinstance(out, str) and len(out) > CELL_CHARS:
        return out[:CELL_CHARS] + "…"
    return out


def _freshness_severity(test: TestDef, row: dict[str, Any] | None) -> str:
    age = row.get("age_seconds") if row else None
    if test.error_after is not None and (age is None or float(age) > test.error_after):
        return "error"
    return "warn" if test.warn_after is not None else test.severity


class TestRunner:
    """Runs tests one after another on one connection; a failing test never stops the suite."""

    def __init__(self, con: duckdb.DuckDBPyConnection, ctx: RenderContext, *,
                 timeout_seconds: float, log: Callable[[str, str], None] | None = None) -> None:
        self.con = con
        self.ctx = ctx
        self.timeout = timeout_seconds
        self.log = log or (lambda _level, _message: None)

    def run_all(self, tests: list[TestDef]) -> list[QualityOutcome]:
        outcomes = [self.run(test) for test in tests]
        for outcome in outcomes:
            if outcome.status != "pass":
                level = "error" if outcome.severity == "error" else "warn"
                detail = outcome.message or f"{outcome.row_count} violating rows"
                self.log(level, f"quality test {outcome.test_name} {outcome.status}: {detail}")
        return outcomes

    def run(self, test: TestDef) -> QualityOutcome:
        out = QualityOutcome(test_name=test.name, kind=test.kind, severity=test.severity,
                             status="pass", description=test.description, tags=list(test.tags),
                             remediation=test.remediation, test_file=test.path)
        start = time.perf_counter()
        try:
            out.compiled_sql = single_select(render(test.sql, self.ctx,
                                                    filename=test.path or test.name))
            self._check(test, out)
        except CompileError as exc:
            out.status, out.message = "error", str(exc)
        except Exception as exc:  # any engine error is this test's error, never the suite's
            out.status, out.message = "error", str(exc).strip() or type(exc).__name__
        finally:
            out.duration_ms = int((time.perf_counter() - start) * 1000)
        return out

    def _check(self, test: TestDef, out: QualityOutcome) -> None:
        import duckdb

        timeout = _Timeout(self.con, self.timeout)
        try:
            with timeout.running():
                row = self.con.execute(f"SELECT count(*) FROM (\n{out.compiled_sql}\n) AS q").fetchone()
                out.row_count = int(row[0]) if row else 0
                if out.row_count:
                    out.sample_rows = self._samples(out.compiled_sql)
        except duckdb.InterruptException:
            if not timeout.fired:
                raise
            out.status, out.message = "error", f"timeout after {self.timeout:g} s"
            return
        if out.row_count:
            out.status = "fail"
            out.message = test.description if test.kind == "custom" else ""
        if test.kind == "freshness" and out.row_count:
            out.severity = _freshness_severity(test, out.sample_rows[0] if out.sample_rows else None)

    def _samples(self, sql: str) -> list[dict[str, Any]]:
        cursor = self.con.execute(f"SELECT * FROM (\n{sql}\n) AS q LIMIT {SAMPLE_ROWS}")
        names = [d[0] for d in cursor.description or []]
        return [{n: cell(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def summary(outcomes: list[QualityOutcome]) -> dict[str, int]:
    """Counts as the API reports them: failed = error severity, warned = warn severity."""
    bad = [o for o in outcomes if o.status != "pass"]
    return {"total": len(outcomes), "passed": len(outcomes) - len(bad),
            "failed": sum(1 for o in bad if o.severity == "error"),
            "warned": sum(1 for o in bad if o.severity == "warn")}
