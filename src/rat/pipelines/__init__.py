"""Pipelines: definitions, draft files, scaffolding, versions."""
