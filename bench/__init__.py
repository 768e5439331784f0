"""Benchmarks, run by `make bench` (never by the test suite). Each `bench/bench_*.py` has `main()`."""
