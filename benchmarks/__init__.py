"""Benchmarks of keras_asanet against references measured in the same run (not part of the
package: `scripts/benchmark.py` is their command line)."""
