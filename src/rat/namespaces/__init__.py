"""Namespaces: the top-level containers of pipelines, tables and landing zones."""
