"""Every object of the feature repository, built for one lake and offline store (no settings, no environment).

``jobs.publish.store`` calls :func:`definitions` with the settings' lake; ``repo.py`` (what the ``feast`` CLI
parses) calls it with the lake named by the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from features.entities import item, user
from features.services import feature_services
from features.sources import lake_sources
from features.views import feature_views


def definitions(lake: Path, offline_store: str) -> list[Any]:
    """Entities, sources, views and services, in dependency order."""
    sources = lake_sources(lake, offline_store)
    views = feature_views(sources)
    return [user, item, *sources.values(), *views.values(), *feature_services(views)]
