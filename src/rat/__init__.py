"""RAT: a self-hostable data platform in one process."""

__version__ = "0.1.0"
