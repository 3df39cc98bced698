"""Retention settings, per-pipeline overrides and the reaper that applies them."""
