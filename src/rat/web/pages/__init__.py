"""HTML pages (htmx). Each page calls the same services as its JSON twin under /api/v1."""
