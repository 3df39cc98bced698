"""The read-only SQL console over published tables."""
