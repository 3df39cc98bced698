"""HTTP adapters: the JSON API under /api/v1 and the htmx pages. Thin: decode, call, render."""
