"""Lineage: which pipelines read which tables and landing zones, from their published code."""
