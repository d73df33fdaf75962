"""Benchmarks: one command each, reports under benchmarks/reports/."""
