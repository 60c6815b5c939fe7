"""Benchmarks (`make bench`); figures are written to docs/BENCHMARKS.md."""
