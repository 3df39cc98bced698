"""Landing zones: drop folders for raw files that bronze pipelines read."""
