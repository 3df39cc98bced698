"""Operations: telemetry reads, backup and restore, and the fence between backups and deletions."""
