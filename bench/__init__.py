"""Parley's benchmarks: `./dev bench` runs them all, `./dev bench NAME` one (see bench/__main__.py)."""
