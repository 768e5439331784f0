"""Benchmarks, run by `make bench`, never by the test suite.

Each `bench/bench_*.py` module has a `main()`; `python -m bench NAME` runs one.
"""
