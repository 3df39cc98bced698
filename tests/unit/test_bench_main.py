"""`python -m bench`: a failing benchmark is a row of the results table, the others still run.

The harness discovers `bmN_*` modules on the `bench` package path; the tiny benchmarks here are
put on that path for the test (issue 16.5).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import bench
import pytest
from bench.__main__ import main

TINY = {
    "bm90_broken.py": "def run(ctx):\n    raise RuntimeError('deliberate failure')\n",
    "bm91_tiny.py": ("from bench.harness import Result\n\n\ndef run(ctx):\n"
                     "    return [Result('BM91', 'tiny figure', 1.5, 's', floor=1.0, target=2.0)]\n"),
    "bm92_unimportable.py": "import rat_no_such_module  # noqa: F401\n",
    "bm93_exits.py": "import sys\n\n\ndef run(ctx):\n    sys.exit(3)\n",
}


@pytest.fixture
def tiny_benches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, source in TINY.items():
        (tmp_path / name).write_text(source)
    monkeypatch.setattr(bench, "__path__", [*bench.__path__, str(tmp_path)])
    yield
    for name in TINY:
        sys.modules.pop(f"bench.{name.removesuffix('.py')}", None)


def final_table(out: str) -> list[str]:
    return out.rsplit("\n\n", 1)[1].splitlines()


def test_a_failing_benchmark_is_reported_and_the_rest_still_run(
        tiny_benches: None, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bm90", "bm91", "bm92", "bm93"])
    rows = final_table(capsys.readouterr().out)[2:]
    assert code == 1
    assert [r.split()[0] for r in rows] == ["BM90", "BM91", "BM92", "BM93"]
    assert "FAILED" in rows[0]
    assert "RuntimeError: deliberate failure" in rows[0]
    assert "tiny figure" in rows[1]
    assert "target met" in rows[1]
    assert "FAILED" in rows[2]
    assert "ModuleNotFoundError" in rows[2]
    assert "FAILED" in rows[3]
    assert "SystemExit: 3" in rows[3]


def test_all_passing_exits_zero(tiny_benches: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bm91"]) == 0
    assert "tiny figure" in final_table(capsys.readouterr().out)[2]
