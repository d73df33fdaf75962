"""The Feast feature repository: entities, lake sources, feature views and feature services.

Declarations live in ``entities.py`` → ``sources.py`` → ``views.py`` → ``services.py`` as functions of the lake
path and offline store; ``definitions.py`` builds them all; ``repo.py`` (the only file the ``feast`` CLI parses;
the others are in ``.feastignore``) builds them for the lake the environment names. The store configuration (one
profile per environment: embedded DuckDB/SQLite/file, or servers Spark/Redis/Postgres) is built from settings by
``jobs/publish/store.py``, which also renders ``$KTREC_HOME/feast/feature_store.yaml`` for the ``feast`` CLI::

    ktrec materialize --end 1998-04-22                                     # apply + load the online store
    feast -c features -f $KTREC_HOME/feast/feature_store.yaml plan         # review changes (CI)
    feast -c $KTREC_HOME/feast serve -h 127.0.0.1 -p 6566                  # HTTP online reads
"""
