"""Runs: the Postgres queue, claims with leases, logs, cancellation, history."""
