"""Console shapes: the request and what a download streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec

FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"),
           "ndjson": ("application/x-ndjson", "ndjson"),
           "arrow": ("application/vnd.apache.arrow.stream", "arrow")}
ACCEPT_FORMATS = {"text/csv": "csv", "application/x-ndjson": "ndjson",
                  "application/vnd.apache.arrow.stream": "arrow"}


class QueryRequest(msgspec.Struct, kw_only=True):
    sql: str = ""
    namespace: str = ""
    limit: int | None = None
    format: str | None = None
    # Time travel: {"layer.name" or "ns.layer.name": snapshot id} reads those tables as they were
    # at that snapshot of their history for this one statement.
    as_of: dict[str, int] | None = None


@dataclass(frozen=True)
class Download:
    """A streamed result: the first chunk is already computed, so errors came before it."""

    media_type: str
    filename: str
    chunks: AsyncIterator[bytes]
