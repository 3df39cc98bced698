"""`python -m bench [bm1 bm2 …]`: run the selected (default: all) benchmarks and print a table.

A benchmark that fails (an exception, an import error, even `sys.exit`) becomes a FAILED row of
the table with its error, and the remaining benchmarks still run; the exit status is non-zero
at the end when anything failed.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

import bench
from bench.harness import BenchContext, Result, report


def selected(wanted: set[str]) -> list[str]:
    """Names of the `bmN_*` modules on the package path, in order, filtered by `wanted`."""
    names = sorted({m.name for m in pkgutil.iter_modules(bench.__path__)
                    if m.name.startswith("bm")})
    return [n for n in names if not wanted or n.split("_")[0] in wanted or n in wanted]


def run_one(ctx: BenchContext, name: str) -> bool:
    """Run benchmark module `name`; on failure add a FAILED row instead of its figures."""
    try:
        ctx.results.extend(importlib.import_module(f"bench.{name}").run(ctx))
    except (Exception, SystemExit) as exc:
        traceback.print_exc()
        ctx.results.append(Result.failed(name.split("_")[0].upper(), exc))
        return False
    return True


def main(argv: list[str]) -> int:
    ctx = BenchContext()
    failed = False
    for name in selected(set(argv)):
        print(f"== {name}", flush=True)
        failed = not run_one(ctx, name) or failed
        print(report(ctx.results), flush=True)
    print("\n" + report(ctx.results))
    return 1 if failed or not ctx.results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
