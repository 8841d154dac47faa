"""Benchmarks: `make bench` (bench.scoring), `make bench-windows` (bench.windows); not part of the package."""
