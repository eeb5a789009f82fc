"""pytest-benchmark suites for ganops (run with ``pytest benchmarks --benchmark-only``)."""
