"""Fault tests (issue 16 item 5): real Postgres, moto S3, Iceberg files and `rat serve` processes.

kill_before_commit (worker SIGKILLed between data files and commit), object_store_faults (TCP
proxy: latency, reset storms, 20 s outages), scratch_full (20 MB tmpfs scratch), concurrent_appends
(8 writers, one table), conflicting_overwrites (one partition, two stages). Loopback only.
"""
