"""Batch jobs, one package per pipeline stage in pipeline order: ``core`` (shared by all), ``ingest``,
``validate``, ``split``, ``profiles``, ``publish``, ``train``, ``registry``, the LLM methods (``cora``), the
``nightly`` glue and the ``cli``. Each exposes plain ``run(...)`` functions that the ``ktrec`` commands and the
Airflow tasks call; imports run one way (tests/test_import_graph.py).
"""
