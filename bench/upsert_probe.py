"""BM4 comparator, run in a subprocess: pyiceberg `table.upsert` of a delta into SF1 lineitem.

argv: chunk rows, lineitem.parquet, then the delta's parquet files. Loads the 6M rows into a local
SqlCatalog table and prints "ready"; then upserts the delta in chunks and prints
"<chunks done> <chunks total> <seconds>" after each (the parent caps the wait and extrapolates).
One upsert of a 60k-key delta crashes pyarrow (stack overflow evaluating the OR of key
equalities), hence the chunks: the workaround pyiceberg users apply.
"""

from __future__ import annotations

import sys
import tempfile
import time


def main(argv: list[str]) -> None:
    import pyarrow.parquet as pq
    from pyiceberg.catalog.sql import SqlCatalog

    chunk = int(argv[1])
    root = tempfile.mkdtemp(prefix="bm4-upsert-", dir="/tmp")
    target = pq.read_table(argv[2])
    delta = pq.read_table(argv[3] if len(argv) == 4 else argv[3:]).cast(target.schema)
    catalog = SqlCatalog("bm4", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}")
    catalog.create_namespace("bench")
    table = catalog.create_table("bench.lineitem", schema=target.schema)
    table.append(target)
    del target
    print("ready", flush=True)
    total = -(-delta.num_rows // chunk)
    start = time.perf_counter()
    for i in range(total):
        table.upsert(delta.slice(i * chunk, chunk), join_cols=["l_orderkey", "l_linenumber"])
        print(i + 1, total, time.perf_counter() - start, flush=True)


if __name__ == "__main__":
    main(sys.argv)
