"""Run every benchmark module (`bench/bench_*.py`), or the ones named: `python -m bench NAME…`."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def main(argv: list[str]) -> int:
    names = sorted(
        info.name for info in pkgutil.iter_modules(bench.__path__) if info.name.startswith("bench_")
    )
    wanted = [f"bench_{name.removeprefix('bench_')}" for name in argv] or names
    unknown = set(wanted) - set(names)
    if unknown:
        print(f"unknown benchmarks: {sorted(unknown)}; known: {names}")
        return 2
    for name in wanted:
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
