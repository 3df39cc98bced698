"""`python -m bench [bm1 bm2 …]`: run the selected (default: all) benchmarks and print a table."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

import bench
from bench.harness import BenchContext, report


def main(argv: list[str]) -> int:
    wanted = set(argv)
    modules = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bm"))
    ctx = BenchContext()
    failed = False
    for name in modules:
        if wanted and name.split("_")[0] not in wanted and name not in wanted:
            continue
        print(f"== {name}", flush=True)
        try:
            ctx.results.extend(importlib.import_module(f"bench.{name}").run(ctx))
        except Exception:
            failed = True
            traceback.print_exc()
        print(report(ctx.results), flush=True)
    print("\n" + report(ctx.results))
    return 1 if failed or not ctx.results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
