"""Publish-time validation: per-file errors with line numbers, warnings that do not block."""

from __future__ import annotations

from rat.engine.validate import validate

PREFIX = "default/pipelines/silver/orders/"


def check(files: dict[str, str], known: tuple[str, ...] = ()) -> dict[str, tuple[list[str], list[str]]]:
    result = validate(files, prefix=PREFIX, namespace="default", table_exists=lambda i: i in known)
    return {r.path.removeprefix(PREFIX): (r.errors, r.warnings) for r in result.files}


def test_valid_pipeline_has_effective_config() -> None:
    result = validate({"pipeline.sql": "-- @merge_strategy: append_only\nSELECT 1 AS id",
                       "config.yaml": "max_retries: 2\n"},
                      prefix=PREFIX, namespace="default", table_exists=lambda _i: True)
    assert result.valid
    assert result.config is not None
    assert (result.config["merge_strategy"], result.config["max_retries"]) == ("append_only", 2)


def test_jinja_syntax_error_names_the_line() -> None:
    got = check({"pipeline.sql": "SELECT *\nFROM t\n\nWHERE {{ x }}}\n{% if %}"})
    errors, _ = got["pipeline.sql"]
    assert errors, errors
    assert errors[0].startswith("line 5:"), errors


def test_missing_unique_key_is_a_config_error() -> None:
    got = check({"pipeline.sql": "SELECT 1 AS id", "config.yaml": "merge_strategy: incremental\n"})
    assert got["config.yaml"][0] == ["merge_strategy 'incremental' requires unique_key"]
    assert got["pipeline.sql"] == ([], [])
    got = check({"pipeline.sql": "-- @merge_strategy: incremental\nSELECT 1 AS id"})
    assert got["pipeline.sql"][0] == ["merge_strategy 'incremental' requires unique_key"]


def test_statement_checks_and_refs() -> None:
    got = check({"pipeline.sql": "SELECT 1; DROP TABLE x"})
    assert "exactly one SELECT" in got["pipeline.sql"][0][0]
    got = check({"pipeline.sql": "SELECT * FROM {{ ref('bronze.' ~ x) }}"})
    assert got["pipeline.sql"][0] == [
        "line 1: ref() needs one constant string argument (no Jinja inside it)"]
    got = check({"pipeline.sql": "SELECT * FROM {{ ref('bronze.a') }} JOIN {{ ref('bronze.b') }}"
                                  " USING (id) -- ref(x)\n-- ref('c')"}, known=("default.bronze.a",))
    assert got["pipeline.sql"] == ([], ["ref('bronze.b'): table default.bronze.b does not exist yet"])
    got = check({"pipeline.sql": "SELECT * FROM ref('bronze.a')"})
    assert got["pipeline.sql"][1][0].startswith("line 1: ref( written outside")


def test_incremental_block_is_checked() -> None:
    sql = ("-- @merge_strategy: append_only\nSELECT * FROM {{ this }}\n"
           "{% if is_append_only() and watermark_value %} WHERE WHERE {% endif %}")
    assert check({"pipeline.sql": sql})["pipeline.sql"][0]


def test_entry_files_and_tests() -> None:
    got = check({"config.yaml": ""})
    assert "exactly one entry file" in got["pipeline.sql"][0][0]
    got = check({"pipeline.sql": "SELECT 1", "pipeline.py": "result = 1"})
    assert "found 2" in got["pipeline.sql"][0][0]
    got = check({"pipeline.sql": "SELECT 1 AS id",
                 "tests/quality/ok.sql": "-- @severity: loud\nSELECT * FROM {{ this }}",
                 "tests/quality/Bad.sql": "SELECT 1",
                 "tests/quality/broken.sql": "SELECT * FROM {{ this }"})
    assert got["tests/quality/ok.sql"] == (
        [], ["@severity 'loud' is not error or warn; treated as error"])
    assert got["tests/quality/Bad.sql"][0] == ["test names must match ^[a-z][a-z0-9_-]*$"]
    assert got["tests/quality/broken.sql"][0][0].startswith("line 1:")


def test_python_checks() -> None:
    assert check({"pipeline.py": "x = 1\n"})["pipeline.py"][0] == ["pipeline.py must set `result`"]
    assert check({"pipeline.py": "import subprocess\nresult = 1\n"})["pipeline.py"][0] == [
        "line 1: import of 'subprocess' is not allowed in pipelines"]
    assert check({"pipeline.py": "\n\ndef f(:\n"})["pipeline.py"][0][0].startswith("line 3:")
    assert check({"pipeline.py": "# @max_retries: 99\nresult = 1\n"})["pipeline.py"][0] == [
        "line 1: max_retries must be an integer from 0 to 10"]


def test_unknown_keys_warn() -> None:
    got = check({"pipeline.sql": "-- @owner_team: x\nSELECT 1", "config.yaml": "owner_team: x\n"})
    assert got["pipeline.sql"] == ([], ["line 1: unknown annotation @owner_team"])
    assert got["config.yaml"] == ([], ["unknown key 'owner_team' in config.yaml"])


def test_ref_in_a_block_comment_is_not_a_bare_ref() -> None:
    sql = ("SELECT 1 AS id /* ref('bronze.a') */\n/* several\nlines ref(x)\n*/ -- ref(y)\n"
           "/* {{ 'jinja' }} ref(z) */ , 'ref(' AS s")
    got = check({"pipeline.sql": sql})
    assert got["pipeline.sql"][1] == [], got
    got = check({"pipeline.sql": "SELECT 1 AS id /* c */\nFROM ref('bronze.a')"})
    assert [w[:30] for w in got["pipeline.sql"][1]] == ["line 2: ref( written outside {"]


def test_ref_argument_with_jinja_delimiters_is_refused() -> None:
    for arg in ("bronze.{{ x }}", "bronze.{% if 1 %}a{% endif %}", "{{this}}", "bronze.{# c #}"):
        got = check({"pipeline.sql": "SELECT 1 AS id\nFROM {{ ref('" + arg + "') }}"})
        errors, warnings = got["pipeline.sql"]
        assert errors == [f"line 2: ref({arg!r}): the name contains Jinja delimiters, which are "
                          "not expanded inside a string; write the name literally"], errors
        assert warnings == []
