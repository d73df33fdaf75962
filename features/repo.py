"""The one module ``feast plan`` / ``feast apply`` parse (the others are in ``.feastignore``).

Feast imports each parsed file as a top-level module while the definitions import each other as
``features.*``; parsing both would register every object twice. The lake comes from the environment:
``KTREC_FEAST_LAKE`` (default ``$KTREC_HOME/lake``, ``KTREC_HOME`` defaulting to ``./.ktrec``), and the offline
store kind from ``KTREC_FEAST_OFFLINE_STORE`` (default: the ``offline_store.type`` of the rendered
``$KTREC_HOME/feast/feature_store.yaml``, else ``duckdb``). Jobs never import this module.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from features.definitions import definitions

_HOME = Path(os.environ.get("KTREC_HOME", ".ktrec")).resolve()
_RENDERED = _HOME / "feast" / "feature_store.yaml"


def _offline_store() -> str:
    if "KTREC_FEAST_OFFLINE_STORE" in os.environ:
        return os.environ["KTREC_FEAST_OFFLINE_STORE"]
    config = yaml.safe_load(_RENDERED.read_text()) if _RENDERED.is_file() else {}
    return (config.get("offline_store") or {}).get("type", "duckdb")


OBJECTS = definitions(Path(os.environ.get("KTREC_FEAST_LAKE", _HOME / "lake")), _offline_store())
# Feast collects the module's attributes: one name per object.
globals().update({f"_{type(obj).__name__.lower()}_{obj.name}": obj for obj in OBJECTS})
