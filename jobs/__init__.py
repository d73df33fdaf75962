"""Batch jobs: one module per pipeline step, each a plain ``run(...)`` function plus a ``ktrec`` command."""
