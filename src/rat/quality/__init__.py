"""Quality tests of pipelines: definitions in files and config, results per run."""
