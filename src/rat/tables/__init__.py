"""Tables: the published Iceberg tables, their stats and descriptions."""
