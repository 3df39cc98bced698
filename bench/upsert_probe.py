"""BM4 comparator, run in a subprocess: pyiceberg `table.upsert` of a delta into SF1 lineitem.

argv: lineitem.parquet, then the delta's parquet files. Loads the 6M rows into a local SqlCatalog
table, prints "ready", then upserts and prints the upsert's seconds (the parent caps the wait).
"""

from __future__ import annotations

import sys
import tempfile
import time


def main(argv: list[str]) -> None:
    import pyarrow.parquet as pq
    from pyiceberg.catalog.sql import SqlCatalog

    root = tempfile.mkdtemp(prefix="bm4-upsert-", dir="/tmp")
    target = pq.read_table(argv[1])
    delta = pq.read_table(argv[2:] if len(argv) > 3 else argv[2]).cast(target.schema)
    catalog = SqlCatalog("bm4", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}")
    catalog.create_namespace("bench")
    table = catalog.create_table("bench.lineitem", schema=target.schema)
    table.append(target)
    del target
    print("ready", flush=True)
    start = time.perf_counter()
    table.upsert(delta, join_cols=["l_orderkey", "l_linenumber"])
    print(time.perf_counter() - start, flush=True)


if __name__ == "__main__":
    main(sys.argv)
