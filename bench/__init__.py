"""Benchmarks (not tests). Run them as modules from the repository root: ``python -m bench.<name>``."""
