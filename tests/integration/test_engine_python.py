"""Python pipelines in a run: globals, accepted results, guard-rails, user line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from rat.engine.pyexec import check_source, sets_result
from tests.integration.wap_support import Engine

IDENT = "default.silver.orders"


@pytest.fixture
def engine(db_dsn: str, tmp_path: Path) -> Engine:
    return Engine(db_dsn, tmp_path)


def test_globals_and_arrow_result(engine: Engine) -> None:
    code = '''# @merge_strategy: append_only
log.info("building %s rows", 3)
assert this is None and not is_incremental and config.merge_strategy == "append_only"
assert run_started_at.endswith("+00:00") and watermark_value is None
result = pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]})
'''
    result, host = engine.run({"pipeline.py": code})
    assert result.ok, result.error
    assert result.rows_written == 3
    assert ("info", "building 3 rows") in host.logs
    assert engine.rows(IDENT) == [(1, "a"), (2, "b"), (3, "c")]
    # Replacement scans of Python variables are off under the lockdown: register instead.
    code2 = '''duckdb_conn.register("rel", duckdb_conn.sql(f"SELECT max(id) AS m FROM {this}").arrow())
result = duckdb_conn.sql(f"SELECT id + (SELECT m FROM rel) AS id, name FROM {ref('silver.orders')}")
'''
    result, _ = engine.run({"pipeline.py": code2})
    assert result.ok, result.error
    assert engine.rows(IDENT) == [(4, "a"), (5, "b"), (6, "c")]


def test_record_batch_reader_from_relation_arrow(engine: Engine) -> None:
    code = 'result = duckdb_conn.sql("SELECT range AS n FROM range(5)").arrow()\n'
    result, _ = engine.run({"pipeline.py": code})
    assert result.ok, result.error
    assert result.rows_written == 5


def test_pandas_result_when_installed(engine: Engine) -> None:
    pytest.importorskip("pandas")
    code = 'import pandas as pd\nresult = pd.DataFrame({"x": [1, 2]})\n'
    result, _ = engine.run({"pipeline.py": code})
    assert result.ok, result.error


@pytest.mark.parametrize(("code", "expected"), [
    ("x = 1\n", "pipeline.py must set `result`"),
    ("result = 42\n", "`result` must be a pyarrow Table"),
    ("x = 1\n\ny = 1 / 0\nresult = x\n", "pipeline.py line 3: ZeroDivisionError: division by zero"),
    ("import os\nresult = None\n", "pipeline.py line 1: import of 'os' is not allowed"),
    ("result = (1).__class__\n", "pipeline.py line 1: access to '__class__' is not allowed"),
    ("result = open('/etc/passwd')\n", "pipeline.py line 1: open() is not allowed"),
    ("def f(:\n", "pipeline.py line 1: SyntaxError"),
    ("m = __import__('subprocess')\n", "pipeline.py line 1: use of '__import__'"),
    ("result = getattr(pa, '__loader__')\n", "pipeline.py line 1: AttributeError"),
    ("duckdb_conn.execute(\"COPY (SELECT 1) TO 'x.csv'\")\n",
     "pipeline.py line 1: PermissionError: COPY statements are not allowed"),
    ("duckdb_conn.sql(\"CREATE SECRET s (TYPE s3)\")\n",
     "pipeline.py line 1: PermissionError: CREATE statements are not allowed"),
    ("c = duckdb_conn.cursor()\n", "duckdb_conn.cursor is not available"),
    ("x = duckdb_conn.sql('SELECT 1')\n\nresult = duckdb_conn.sql('SELECT * FROM nope')\n",
     "pipeline.py line 3: CatalogException"),
])
def test_errors_name_the_users_line(engine: Engine, code: str, expected: str) -> None:
    before = engine.snapshot(IDENT)
    result, _ = engine.run({"pipeline.py": code})
    assert not result.ok
    assert expected in (result.error or ""), result.error
    assert result.stage is None
    assert engine.snapshot(IDENT) == before


def test_blocked_import_at_runtime_through_a_library(engine: Engine) -> None:
    code = "import json\nresult = pa.table({'a': [json.dumps(1)]})\n"
    result, _ = engine.run({"pipeline.py": code})
    assert result.ok, result.error


def test_quality_tests_run_for_python_pipelines(engine: Engine) -> None:
    files = {"pipeline.py": "result = pa.table({'id': [1, None]})\n",
             "config.yaml": "columns:\n  - name: id\n    tests: [not_null]\n"}
    result, _ = engine.run(files)
    assert [(q.test_name, q.status) for q in result.quality] == [("id__not_null", "fail")]


def test_static_checks() -> None:
    assert check_source("import pandas\nresult = 1\n") == []
    assert check_source("from os import path\n") == [
        "line 1: import of 'os' is not allowed in pipelines"]
    assert check_source("from . import x\n") == ["line 1: relative imports are not allowed in pipelines"]
    assert sets_result("result = 1")
    assert not sets_result("x = 1")
