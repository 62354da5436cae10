"""Benchmarks of the polling tree against its peers (see run.py and RESULTS.md)."""
