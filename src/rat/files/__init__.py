"""The files API: read pipeline and landing files, write only inside pipelines and zone samples."""
