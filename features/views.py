"""Feature views: which lake columns are features, for which entity, and how long they stay valid.

The ``ttl`` bounds how far back a point-in-time read looks for a row: a feature older than the ttl at an
example's timestamp is treated as missing rather than silently reused.
"""

from __future__ import annotations

from datetime import timedelta

from feast import Entity, FeatureView, Field
from feast.data_source import DataSource
from feast.types import Array, Float32, Float64, Int64, String

from features.entities import item, user
from jobs.core import lake

# Profiles are regenerated only when an entity's inputs change (jobs/profiles/generate.py), so an inactive user's last
# profile stays current for long; two years covers every dataset we ship (MovieLens spans seven months).
PROFILE_TTL = timedelta(days=730)
# Stats are recomputed on every nightly run; after a month without a run they are stale enough to drop.
STATS_TTL = timedelta(days=30)


def _profile_schema(entity: str) -> list[Field]:
    return [
        Field(
            name="embedding",
            dtype=Array(Float32),
            description=f"Sentence embedding of the {entity}'s profile text (the LLM-KT target).",
        ),
        Field(
            name="profile_text",
            dtype=String,
            description=f"The LLM-written natural-language profile of the {entity}.",
        ),
        Field(
            name="generator",
            dtype=String,
            description="What wrote the profile: '<backend>:<model>:<template version>'.",
        ),
    ]


FEAST_TYPES = {"bigint": Int64, "double": Float64}
STATS_KIND = {"user": "Activity", "item": "Popularity"}


def _stats_view(entity: Entity, source: DataSource) -> FeatureView:
    name = entity.name
    return FeatureView(
        name=f"{name}_stats",
        entities=[entity],
        ttl=STATS_TTL,
        schema=[Field(name=col, dtype=FEAST_TYPES[kind], description=text)
                for col, kind, text in lake.STATS_FEATURES[name]],
        source=source,
        online=True,
        description=f"{STATS_KIND[name]} statistics of the {name}, recomputed at each as-of time by ktrec stats.",
        tags={"team": "ktrec", "kind": "stats"},
    )


def _profile_view(entity: Entity, source: DataSource) -> FeatureView:
    name = entity.name
    article = "An" if name == "item" else "A"
    return FeatureView(
        name=f"{name}_profile",
        entities=[entity],
        ttl=PROFILE_TTL,
        schema=_profile_schema(name),
        source=source,
        online=True,
        description=f"{article} {name}'s LLM profile and its embedding, as of the time the profile was generated.",
        tags={"team": "ktrec", "kind": "profile"},
    )


def feature_views(sources: dict[str, DataSource]) -> dict[str, FeatureView]:
    """The four views on the given lake sources (``features.sources.lake_sources``), by name."""
    views = [
        _profile_view(user, sources[lake.USER_PROFILES]), _profile_view(item, sources[lake.ITEM_PROFILES]),
        _stats_view(user, sources[lake.USER_STATS]), _stats_view(item, sources[lake.ITEM_STATS]),
    ]
    return {view.name: view for view in views}
