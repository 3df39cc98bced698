"""BM5: the 22 TPC-H queries at SF1 through POST /query, against DuckDB over the same data files.

RAT: the eight TPC-H tables are loaded by bronze pipelines reading the generated parquet from
landing zones; each query is DuckDB's own `tpch_queries()` text with table names qualified
(`lineitem` -> `bronze.lineitem`, found with DuckDB's tokenizer), sent with `limit` 10,000.
Floor: a fresh in-process DuckDB with the console's limits (2 threads, RAT_QUERY_MEMORY_LIMIT)
and one view per table over `read_parquet` of the very data files RAT's runs wrote, fetching
the same at most 10,001 rows. Each query: one warm-up, then the median of REPEAT timed runs,
RAT and floor interleaved so both see the same machine state.
Figures: total of per-query medians (target <= 1.3x, ambitious 1.05x), each query's ratio,
and the first-row latency of `SELECT * FROM bronze.lineitem LIMIT 100` (no target).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import BenchContext, Result, Server, median, timed, wait_run

TABLES = ("lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region")
REPEAT = 5
LIMIT = 10_000
MEMORY_LIMIT = "1GB"
FIRST_ROWS = "SELECT * FROM {t} LIMIT 100"


def tpch_queries() -> list[tuple[int, str]]:
    import duckdb

    from rat.engine.duck import extension_path, sql_str

    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    con.execute(f"LOAD {sql_str(extension_path('tpch'))}")
    return [(int(n), str(q)) for n, q in
            con.execute("SELECT query_nr, query FROM tpch_queries() ORDER BY 1").fetchall()]


def qualify(sql: str, schema: str = "bronze") -> str:
    """Put every TPC-H base table in `schema`, by editing DuckDB's own parse tree of the query
    (`json_serialize_sql` -> set `schema_name` -> `json_deserialize_sql`)."""
    import duckdb

    con = duckdb.connect()
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            if node.get("type") == "BASE_TABLE" and node.get("table_name") in TABLES \
                    and not node.get("schema_name"):
                node["schema_name"] = schema
            for value in node.values():
                visit(value)

    visit(tree)
    return str(con.execute("SELECT json_deserialize_sql(?::JSON)",
                           [json.dumps(tree)]).fetchone()[0])


def load(server: Server, client: httpx.Client, data: Path) -> None:
    """Drop each parquet file into a landing zone and run a bronze pipeline over it."""
    runs = []
    for table in TABLES:
        zone = server.data_dir / "storage" / "default" / "landing" / f"tpch_{table}"
        zone.mkdir(parents=True, exist_ok=True)
        shutil.copy(data / f"{table}.parquet", zone / f"{table}.parquet")
        source = f"SELECT * FROM read_parquet('{{{{ landing_zone(\"tpch_{table}\") }}}}')"
        client.post("/pipelines", json={"namespace": "default", "layer": "bronze",
                                        "name": table, "source": source}).raise_for_status()
        runs.append(client.post("/runs", json={"namespace": "default", "layer": "bronze",
                                               "pipeline": table}).json()["run_id"])
    for run_id in runs:
        run = wait_run(client, run_id)
        if run["status"] != "success":
            raise RuntimeError(f"BM5 load failed: {run}")


def floor_connection(server: Server, scratch: str) -> Any:
    import duckdb

    from rat.engine.duck import sql_str

    con = duckdb.connect(config={"threads": 2, "memory_limit": MEMORY_LIMIT,
                                 "temp_directory": scratch})
    con.execute("CREATE SCHEMA bronze")
    for table in TABLES:
        files = server.data_dir / "storage" / "_warehouse" / "default" / "bronze" / table / "data"
        con.execute(f"CREATE VIEW bronze.{table} AS SELECT * FROM "
                    f"read_parquet({sql_str(str(files) + '/**/*.parquet')})")
    return con


def rat_query(client: httpx.Client, sql: str) -> int:
    resp = client.post("/query", json={"sql": sql, "limit": LIMIT})
    if resp.status_code != 200:
        raise RuntimeError(f"BM5 query failed: {resp.text[:500]}")
    return int(resp.json()["total_rows"])


def measure(client: httpx.Client, con: Any, sql: str) -> tuple[float, float]:
    """Median seconds (RAT, floor) for one statement after a checked warm-up."""
    rat_rows = rat_query(client, sql)
    floor_rows = min(len(con.sql(sql).limit(LIMIT + 1).fetchall()), LIMIT)
    if rat_rows != floor_rows:
        raise RuntimeError(f"BM5 row counts differ: RAT {rat_rows}, DuckDB {floor_rows}")
    rat, floor = [], []
    for _ in range(REPEAT):
        rat.append(timed(lambda: rat_query(client, sql)))
        floor.append(timed(lambda: con.sql(sql).limit(LIMIT + 1).fetchall()))
    return median(rat), median(floor)


def run(ctx: BenchContext) -> list[Result]:
    data = ctx.tpch_parquet(1)
    queries = [(n, qualify(q)) for n, q in tpch_queries()]
    results: list[Result] = []
    scratch = tempfile.mkdtemp(prefix="bm5-floor-", dir="/tmp")
    env = {"RAT_QUERY_MEMORY_LIMIT": MEMORY_LIMIT, "RAT_QUERY_TIMEOUT_SECONDS": "600"}
    try:
        with ctx.server(env) as server, server.client() as client:
            start = time.perf_counter()
            load(server, client, data)
            print(f"BM5: loaded TPC-H SF1 in {time.perf_counter() - start:.1f} s", flush=True)
            con = floor_connection(server, scratch)
            total_rat = total_floor = 0.0
            for number, sql in queries:
                rat, floor = measure(client, con, sql)
                total_rat += rat
                total_floor += floor
                results.append(Result("BM5", f"TPC-H Q{number:02d}", rat, "s", floor=floor,
                                      target=1.3, ambitious=1.05))
                print(f"BM5: Q{number:02d} {rat:.3f} s vs {floor:.3f} s", flush=True)
            first = FIRST_ROWS.format(t="bronze.lineitem")
            rat, floor = measure(client, con, first)
            con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [Result("BM5", "TPC-H SF1 22 queries, total of medians", total_rat, "s",
                   floor=total_floor, target=1.3, ambitious=1.05),
            *results,
            Result("BM5", "first rows: SELECT * FROM lineitem LIMIT 100", rat, "s",
                   floor=floor)]
