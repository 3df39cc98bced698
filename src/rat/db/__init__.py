"""Postgres adapter: pool, named queries, migrations, the embedded server."""
