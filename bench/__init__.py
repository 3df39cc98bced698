"""Benchmarks: `make bench` runs every bench/bm*.py module and prints figures with their floors."""
