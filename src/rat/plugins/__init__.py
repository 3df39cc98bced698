"""RAT plugins: protocols, the host that loads them, and the shipped Pro plugins."""
