"""Feature views: which lake columns are features, for which entity, and how long they stay valid.

The ``ttl`` bounds how far back a point-in-time read looks for a row: a feature older than the ttl at an
example's timestamp is treated as missing rather than silently reused.
"""

from __future__ import annotations

from datetime import timedelta

from feast import FeatureView, Field
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


def feature_views(sources: dict[str, DataSource]) -> dict[str, FeatureView]:
    """The four views on the given lake sources (``features.sources.lake_sources``), by name."""
    user_profile = FeatureView(
        name="user_profile",
        entities=[user],
        ttl=PROFILE_TTL,
        schema=_profile_schema("user"),
        source=sources[lake.USER_PROFILES],
        online=True,
        description="A user's LLM profile and its embedding, as of the time the profile was generated.",
        tags={"team": "ktrec", "kind": "profile"},
    )

    item_profile = FeatureView(
        name="item_profile",
        entities=[item],
        ttl=PROFILE_TTL,
        schema=_profile_schema("item"),
        source=sources[lake.ITEM_PROFILES],
        online=True,
        description="An item's LLM profile and its embedding, as of the time the profile was generated.",
        tags={"team": "ktrec", "kind": "profile"},
    )

    user_stats = FeatureView(
        name="user_stats",
        entities=[user],
        ttl=STATS_TTL,
        schema=[
            Field(
                name="n_interactions", dtype=Int64, description="Interactions of the user up to the as-of time."
            ),
            Field(
                name="mean_rating",
                dtype=Float64,
                description="Mean explicit rating given by the user (null when no event has a rating).",
            ),
            Field(
                name="days_since_last",
                dtype=Float64,
                description="Days between the user's last interaction and the as-of time.",
            ),
            Field(name="n_items", dtype=Int64, description="Distinct items the user interacted with."),
        ],
        source=sources[lake.USER_STATS],
        online=True,
        description="Activity statistics of a user, recomputed at each as-of time by jobs/publish/stats.py.",
        tags={"team": "ktrec", "kind": "stats"},
    )

    item_stats = FeatureView(
        name="item_stats",
        entities=[item],
        ttl=STATS_TTL,
        schema=[
            Field(
                name="n_interactions", dtype=Int64, description="Interactions with the item up to the as-of time."
            ),
            Field(
                name="mean_rating",
                dtype=Float64,
                description="Mean explicit rating of the item (null when no event has a rating).",
            ),
            Field(
                name="days_since_last",
                dtype=Float64,
                description="Days between the item's last interaction and the as-of time.",
            ),
            Field(name="n_users", dtype=Int64, description="Distinct users who interacted with the item."),
        ],
        source=sources[lake.ITEM_STATS],
        online=True,
        description="Popularity statistics of an item, recomputed at each as-of time by jobs/publish/stats.py.",
        tags={"team": "ktrec", "kind": "stats"},
    )
    return {view.name: view for view in (user_profile, item_profile, user_stats, item_stats)}
