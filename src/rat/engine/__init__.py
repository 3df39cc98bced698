"""Synchronous DuckDB + Iceberg execution. Never imports asyncio-world code; runs in workers/threads."""
