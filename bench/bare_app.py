"""BM6's floor: a bare Litestar app serving a fixed ~1 KB JSON object under the same uvicorn
settings as `rat serve` (one process, uvloop and httptools when installed, no access log).

`python -m bench.bare_app PORT`
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from litestar import Litestar, get

# Shaped like GET /api/v1/pipelines/{ns}/{layer}/{name}, so serialisation costs the same.
PIPELINE: dict[str, Any] = {
    "id": "2f6a3c1e-8d4b-4b7e-9a51-1c2d3e4f5a6b", "namespace": "default", "layer": "silver",
    "name": "orders_0001", "type": "sql", "description": "Orders cleaned and typed " * 4,
    "owner": None, "s3_path": "default/pipelines/silver/orders_0001/",
    "published_versions": {"pipeline.sql": "9f86d081884c7d659a2feaa0c55ad015"},
    "published_at": None, "current_version": None, "draft_dirty": True, "max_versions": 50,
    "retention_config": None, "config": {"merge_strategy": "full_refresh", "unique_key": [],
                                         "partition_by": [], "max_retries": 0},
    "created_at": "2026-11-22T10:00:00.123456Z", "updated_at": "2026-11-22T10:00:00.123456Z",
    "deleted_at": None, "last_run": None,
}


@get("/item", sync_to_thread=False)
def item() -> dict[str, Any]:
    return PIPELINE


def main(port: int) -> None:
    app = Litestar([item], logging_config=None)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                lifespan="on", proxy_headers=False)


if __name__ == "__main__":
    main(int(sys.argv[1]))
