"""BM2: a GROUP BY over TPC-H SF1 lineitem (an Iceberg table in RAT) written as a new table.

RAT: POST /runs to `success` of a gold pipeline reading `ref('bronze.lineitem')` (median of 3
runs; each replaces the table, full_refresh). Floor: a fresh DuckDB (threads=2, like a worker)
running `COPY (<same SELECT> over lineitem.parquet) TO parquet (zstd)`, median of 3.
Targets: <= 1.5x the floor (ambitious 1.15x). Also reported: the worker's peak RSS.
"""

from __future__ import annotations

from bench import tpch_rat as rat
from bench.harness import BenchContext, Result, median

QUERY = ("SELECT l_orderkey, l_partkey, sum(l_extendedprice * (1 - l_discount)) AS revenue "
         "FROM {source} GROUP BY 1, 2")
RUNS = 3


def _floor(ctx: BenchContext) -> float:
    source = f"read_parquet('{ctx.tpch_parquet(1) / 'lineitem.parquet'}')"
    out = rat.scratch("bm2-floor-") / "out.parquet"
    return rat.floor_duckdb(f"COPY ({QUERY.format(source=source)}) TO '{out}' "
                        "(FORMAT parquet, COMPRESSION zstd)")


def run_bench(ctx: BenchContext) -> tuple[list[float], list[float], int]:
    with ctx.server() as server, server.client() as client:
        rat.land(ctx, server, "tpch", ("lineitem",))
        rat.pipeline(client, "bronze", "lineitem",
                 "SELECT * FROM read_parquet('{{ landing_zone('tpch') }}')")
        rat.run(client, "bronze", "lineitem")
        rat.pipeline(client, "gold", "revenue",
                 QUERY.format(source="{{ ref('bronze.lineitem') }}"))
        memory = rat.WorkerMemory(server)
        memory.reset()
        walls, writes = [], []
        for _ in range(RUNS):
            wall, detail = rat.run(client, "gold", "revenue")
            walls.append(wall)
            writes.append(rat.phase_seconds(detail, "write"))
        return walls, writes, memory.peak()


def run(ctx: BenchContext) -> list[Result]:
    walls, writes, peak = run_bench(ctx)
    floor = median([_floor(ctx) for _ in range(RUNS)])
    return [
        Result("BM2", "GROUP BY SF1 -> Iceberg (POST -> success)", median(walls), "s",
               floor=floor, target=1.5, ambitious=1.15),
        Result("BM2", "  of which write phase (COPY + commit)", median(writes), "s"),
        Result("BM2", "  worker peak RSS", peak / 2**20, "MB"),
    ]
