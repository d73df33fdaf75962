"""Stage 5, publish: lake tables in, Feast features out.

Enters: the lake's interactions and profile tables. ``stats`` computes per-user and per-item statistics
as of a time (Spark) into the lake; ``store`` builds the Feast store for the settings (DuckDB/SQLite/file
embedded, Spark/Redis/Postgres on servers) and applies the repository in ``features/``; ``materialize`` loads
the online store; ``reads`` are the point-in-time and online reads the trainers and services use. Leaves:
the lake tables ``user_stats``/``item_stats``, a Feast registry and online store.
"""
