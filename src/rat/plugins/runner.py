"""Runner-side plugin loading inside an engine worker process.

Imported by the worker at start (`python -m rat.engine.workerproc FD KIND rat.plugins.runner`).
The server passes the runner plugins that loaded on its side, with their config, as JSON in
RAT_RUNNER_PLUGINS; each is activated again here so its strategies, pipeline types, Jinja helpers
and hooks exist in this process. A failure is reported on stderr and the worker keeps serving
(a run that needs the missing piece fails with a clear error).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import msgspec

from rat.plugins.host import RUNNER_ENV, RunnerContext, discover, parse_config, resolve


def load_runner_plugins(spec: str) -> list[str]:
    """Activate each plugin in `spec` (JSON name -> config); returns the names that failed."""
    if not spec:
        return []
    targets = discover()
    failed = []
    for name, raw in msgspec.json.decode(spec, type=dict[str, dict[str, Any]]).items():
        try:
            obj = resolve(targets[name])
            obj.activate_runner(RunnerContext(config=parse_config(obj, raw)))
        except Exception as exc:
            failed.append(name)
            print(f"rat worker: plugin {name} failed: {type(exc).__name__}: {exc}",  # noqa: T201
                  file=sys.stderr, flush=True)
    return failed


load_runner_plugins(os.environ.get(RUNNER_ENV, ""))
