"""BM3: append TPC-H SF1 lineitem (6M rows) to an Iceberg table through RAT's writer.

RAT: an `append_only` pipeline reading the landed lineitem parquet. The write phase (batch in the
engine -> field-id'd parquet data files -> one snapshot on the run's branch) is the platform
writer; the run also reads the parquet (execute phase) and publishes.
Floors, same machine and run: `pyarrow.parquet.write_table(tbl, zstd)` of the same data already in
Arrow (F_arrow) for the writer; `read_table` + `write_table` for the whole run. Comparator:
pyiceberg `table.append(tbl)` into a local SqlCatalog.
Targets: writer <= 1.3x F_arrow (ambitious 1.1x); worker peak RSS <= 2x the Arrow table's bytes.
"""

from __future__ import annotations

import time

from bench import tpch_rat as rat
from bench.harness import BenchContext, Result


def _floors(ctx: BenchContext) -> tuple[float, float, int, float]:
    """(read seconds, write_table seconds, Arrow bytes, pyiceberg append seconds)."""
    import pyarrow.parquet as pq

    source = ctx.tpch_parquet(1) / "lineitem.parquet"
    start = time.perf_counter()
    table = pq.read_table(source)
    read = time.perf_counter() - start
    out = rat.scratch("bm3-floor-")
    start = time.perf_counter()
    pq.write_table(table, out / "lineitem.parquet", compression="zstd")
    write = time.perf_counter() - start
    return read, write, table.nbytes, _pyiceberg_append(table, out)


def _pyiceberg_append(table: object, root: object) -> float:
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("bm3", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}")
    catalog.create_namespace("bench")
    iceberg = catalog.create_table("bench.lineitem",
                                   schema=table.schema)  # type: ignore[attr-defined]
    start = time.perf_counter()
    iceberg.append(table)
    return time.perf_counter() - start


def run(ctx: BenchContext) -> list[Result]:
    with ctx.server() as server, server.client() as client:
        rat.land(ctx, server, "tpch", ("lineitem",))
        rat.pipeline(client, "bronze", "lineitem",
                     "SELECT * FROM read_parquet('{{ landing_zone('tpch') }}')",
                     "merge_strategy: append_only\n")
        memory = rat.WorkerMemory(server)
        memory.reset()
        wall, detail = rat.run(client, "bronze", "lineitem")
        peak = memory.peak()
        files = len(rat.iceberg_files(server, "bronze", "lineitem"))
    write = rat.phase_seconds(detail, "write")
    read, f_arrow, nbytes, append = _floors(ctx)
    return [
        Result("BM3", "writer: write phase vs F_arrow", write, "s", floor=f_arrow,
               target=1.3, ambitious=1.1, note=f"({files} data files)"),
        Result("BM3", "append run (POST -> success) vs read+write", wall, "s",
               floor=read + f_arrow),
        Result("BM3", "worker peak RSS / Arrow table bytes", peak / nbytes, "x",
               target=2.0, ambitious=1.2,
               note=f"({peak / 2**20:.0f} MB / {nbytes / 2**20:.0f} MB)"),
        Result("BM3", "comparator: pyiceberg table.append", append, "s", floor=f_arrow),
    ]
