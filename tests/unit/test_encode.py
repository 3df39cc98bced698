"""Result values encode as P§12 promises, chosen per DuckDB column type."""

from __future__ import annotations

from typing import Any

import msgspec

from rat.engine.encode import JSON, row_encoder, unique_names


def connect() -> Any:
    import duckdb

    return duckdb.connect()


def encoded(sql: str) -> dict[str, object]:
    con = connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql(sql)
    row = rel.fetchone()
    assert row is not None
    encode = row_encoder(unique_names(list(rel.columns)), list(rel.types))
    return dict(msgspec.json.decode(JSON.encode(encode(row))))


def test_numbers() -> None:
    out = encoded("SELECT 42::BIGINT AS i, 170141183460469231731687303715884105727::HUGEINT AS h,"
                  " 12.50::DECIMAL(10,2) AS d, 1.5::DOUBLE AS f, 'nan'::DOUBLE AS n,"
                  " 'inf'::FLOAT AS pinf, '-inf'::DOUBLE AS ninf, NULL::DOUBLE AS z,"
                  " 18446744073709551615::UBIGINT AS u")
    assert out == {"i": 42, "h": "170141183460469231731687303715884105727", "d": 12.5,
                   "f": 1.5, "n": "NaN", "pinf": "Infinity", "ninf": "-Infinity", "z": None,
                   "u": 18446744073709551615}


def test_decimal_is_an_exact_json_number() -> None:
    con = connect()
    rel = con.sql("SELECT 12345678901234567.89::DECIMAL(38,2) AS d")
    row = rel.fetchone()
    assert row is not None
    raw = JSON.encode(row_encoder(["d"], list(rel.types))(row))
    assert raw == b'{"d":12345678901234567.89}'


def test_times_and_blobs() -> None:
    out = encoded("SELECT DATE '2024-01-02' AS d, TIMESTAMP '2024-01-02 03:04:05.5' AS ts,"
                  " TIMESTAMPTZ '2024-01-02 03:04:05+02' AS tz, TIME '01:02:03' AS t,"
                  " INTERVAL 3 DAY AS iv, '\\x00\\xff'::BLOB AS b,"
                  " '00000000-0000-0000-0000-000000000001'::UUID AS u")
    assert out == {"d": "2024-01-02", "ts": "2024-01-02T03:04:05.500000", "tz":
                   "2024-01-02T01:04:05Z", "t": "01:02:03", "iv": "P3D", "b": "AP8=",
                   "u": "00000000-0000-0000-0000-000000000001"}


def test_nested_values() -> None:
    out = encoded("SELECT [1, NULL, 3] AS l, {'a': 1, 'b': ['nan'::DOUBLE]} AS s,"
                  " MAP {'k': 1::HUGEINT} AS m, [1, 2]::INTEGER[2] AS arr,"
                  " union_value(num := 2) AS un")
    assert out == {"l": [1, None, 3], "s": {"a": 1, "b": ["NaN"]},
                   "m": [{"key": "k", "value": "1"}], "arr": [1, 2], "un": 2}


def test_duplicate_names_get_suffixes() -> None:
    assert encoded("SELECT 1 AS a, 2 AS a, 3 AS a_1") == {"a": 1, "a_1": 2, "a_1_1": 3}
