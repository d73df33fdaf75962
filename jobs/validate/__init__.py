"""Stage 2, validate: the Great Expectations gate between the lake and everything downstream.

Enters: the lake's ``interactions``/``items``/``users``/``quarantine`` tables and a batch manifest (or the
profile tables, for ``validate_profiles``). ``expectations`` declares the suites, ``gx`` runs them (pandas
engine for small tables, Spark for large ones) and renders Data Docs, ``gate`` decides. Leaves: a validation
summary and Data Docs under ``$KTREC_HOME/gx``; a failure raises :class:`ValidationFailed`, which stops the
DAG before anything downstream is overwritten.
"""

from jobs.validate.gate import ValidationFailed, run, validate_profiles

__all__ = ["ValidationFailed", "run", "validate_profiles"]
