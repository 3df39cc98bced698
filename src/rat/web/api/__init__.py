"""The REST API under /api/v1 (contract: shared/spec/api.md)."""
