"""BM4: `incremental` merge of a 1% delta (half updates, half inserts) into SF1 lineitem (6M rows).

Key (l_orderkey, l_linenumber). Two deltas of 60k rows: updates spread uniformly over the table
(every data file is touched), and updates of the most recent orders (only the newest file is).
RAT: POST /runs to `success` of the merge run.
Floor (a): a fresh DuckDB rewriting everything, `COPY ((target ANTI JOIN delta) UNION ALL delta)
TO parquet` over the same target and delta files. Comparator (b): pyiceberg `table.upsert` of the
uniform delta into the same 6M rows in a local SqlCatalog, in a subprocess (bench/upsert_probe.py):
in UPSERT_CHUNK-row calls, because one call with 60k keys crashes pyarrow; after UPSERT_CAP_S the
total is extrapolated from the chunks done.
Targets: <= 2x floor (ambitious 1x); >= 10x faster than upsert (ambitious 50x).
Also: a 1M-row delta (500k updates, 500k inserts): worker peak RSS must stay under 500 MB.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from bench import tpch_rat as rat
from bench.harness import ROOT, BenchContext, Result, Server, median

KEYS = "l_orderkey, l_linenumber"
INSERT_OFFSET = 100_000_000
UPSERT_CAP_S = 300
# One 60k-key upsert segfaults in pyarrow (the OR of key equalities); users upsert in chunks.
UPSERT_CHUNK = 1000
MEMORY_TARGET_MB = 500


def _delta_sql(updates: str, inserts: str) -> str:
    """Updated copies of `updates` rows plus brand-new keys made from `inserts` rows."""
    return (f"SELECT * REPLACE (l_quantity + 1 AS l_quantity, 'bm4 update' AS l_comment) "
            f"FROM {{{{ ref('bronze.lineitem') }}}} WHERE {updates} "
            f"UNION ALL SELECT * REPLACE (l_orderkey + {INSERT_OFFSET} AS l_orderkey) "
            f"FROM {{{{ ref('bronze.lineitem') }}}} WHERE {inserts}")


DELTAS = {
    # 6M / 200 = 30k rows each, spread over the whole key range.
    "uniform": _delta_sql("hash(l_orderkey, l_linenumber) % 200 = 0",
                          "hash(l_orderkey, l_linenumber) % 200 = 1"),
    # The newest 30k rows (late updates), and 30k new keys.
    "recent": _delta_sql("l_orderkey > 5_970_000", "hash(l_orderkey, l_linenumber) % 200 = 1"),
    # 1M rows: the memory check.
    "1M": _delta_sql("hash(l_orderkey, l_linenumber) % 12 = 0",
                     "hash(l_orderkey, l_linenumber) % 12 = 1"),
}
MERGE = "merge_strategy: incremental\nunique_key: [l_orderkey, l_linenumber]\n"


def _floor(target: list[str], delta: list[str]) -> float:
    out = rat.scratch("bm4-floor-") / "out.parquet"
    t, d = (f"read_parquet({files!r})" for files in (target, delta))
    return rat.floor_duckdb(f"COPY (SELECT * FROM {t} AS t ANTI JOIN {d} AS d USING ({KEYS}) "
                            f"UNION ALL SELECT * FROM {d}) TO '{out}' (FORMAT parquet, "
                            "COMPRESSION zstd)")


class Setup:
    """A server with bronze.lineitem and the deltas; one merge target table per measurement."""

    def __init__(self, ctx: BenchContext, server: Server, client: httpx.Client) -> None:
        self.server, self.client = server, client
        rat.land(ctx, server, "tpch", ("lineitem",))
        rat.pipeline(client, "bronze", "lineitem",
                     "SELECT * FROM read_parquet('{{ landing_zone('tpch') }}')")
        rat.run(client, "bronze", "lineitem")
        for name, sql in DELTAS.items():
            rat.pipeline(client, "bronze", f"delta_{name.lower()}", sql)
            rat.run(client, "bronze", f"delta_{name.lower()}")

    def target(self, delta: str) -> tuple[str, list[str]]:
        """silver.target_{delta}: the 6M rows loaded by a first incremental run; its files."""
        name = f"target_{delta.lower()}"
        rat.pipeline(self.client, "silver", name, "SELECT * FROM {{ ref('bronze.lineitem') }}",
                     MERGE)
        rat.run(self.client, "silver", name)
        return name, rat.iceberg_files(self.server, "silver", name)

    def merge(self, name: str, delta: str) -> tuple[float, dict[str, Any], int]:
        """(wall seconds, run detail, worker peak RSS bytes) of merging one delta."""
        rat.set_sql(self.client, "silver", name,
                    f"SELECT * FROM {{{{ ref('bronze.delta_{delta.lower()}') }}}}")
        memory = rat.WorkerMemory(self.server)
        memory.reset()
        wall, detail = rat.run(self.client, "silver", name)
        return wall, detail, memory.peak()


def _upsert(delta_files: list[str], ctx: BenchContext) -> tuple[float, str]:
    """pyiceberg upsert seconds (extrapolated when capped) and a note on how it was measured."""
    script = Path(__file__).with_name("upsert_probe.py")
    lineitem = str(ctx.tpch_parquet(1) / "lineitem.parquet")
    proc = subprocess.Popen([sys.executable, str(script), str(UPSERT_CHUNK), lineitem,
                             *delta_files], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("upsert probe failed to load the table")
    progress: list[str] = []
    reader = threading.Thread(target=lambda: progress.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        proc.wait(timeout=UPSERT_CAP_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join()
    if not progress:
        raise RuntimeError(f"upsert probe made no progress (exit {proc.returncode})")
    done, total, seconds = progress[-1].split()
    estimate = float(seconds) * int(total) / int(done)
    how = "measured" if done == total else f"extrapolated from {done}/{total} chunks"
    return estimate, f"{how}, {UPSERT_CHUNK}-row upserts"


def run(ctx: BenchContext) -> list[Result]:
    results: list[Result] = []
    with ctx.server() as server, server.client() as client:
        setup = Setup(ctx, server, client)
        deltas = {name: rat.iceberg_files(server, "bronze", f"delta_{name.lower()}")
                  for name in DELTAS}
        for name in ("uniform", "recent"):
            table, files = setup.target(name)
            wall, detail, _peak = setup.merge(table, name)
            meta = next(p["metadata"] for p in detail["phase_profiles"] if p["name"] == "write")
            floor = median([_floor(files, deltas[name]) for _ in range(3)])
            results.append(Result(
                "BM4", f"60k merge into 6M, {name} updates", wall, "s", floor=floor, target=2.0,
                ambitious=1.0, note=f"(rewrote {meta['files_rewritten']}/{len(files)} files)"))
        table, _files = setup.target("1M")
        wall, _detail, peak = setup.merge(table, "1M")
        # Inside the block: the delta files live in the server's data directory.
        upsert, how = _upsert(deltas["uniform"], ctx)
    uniform = results[0].value
    # Ratio = RAT / upsert: "10x faster" is a target of 0.1, "50x" an ambitious 0.02.
    results.append(Result("BM4", "uniform 60k merge vs pyiceberg upsert", uniform, "s",
                          floor=upsert, target=0.1, ambitious=0.02,
                          note=f"({upsert / uniform:.0f}x faster; upsert {how})"))
    results.append(Result("BM4", "1M-row merge: worker peak RSS", peak / 2**20, "MB",
                          target=MEMORY_TARGET_MB, note=f"(merge took {wall:.1f} s)"))
    return results
