"""Benchmarks: `python -m benchmarks` measures the pipeline against its limits (see __main__.py)."""
