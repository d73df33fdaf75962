"""Feature views: which lake columns are features, for which entity, and how long they stay valid.

The ``ttl`` bounds how far back a point-in-time read looks for a row: a feature older than the ttl at an
example's timestamp is treated as missing rather than silently reused.
"""

from __future__ import annotations

from datetime import timedelta

from feast import FeatureView, Field
from feast.types import Array, Float32, Float64, Int64, String

from features.entities import item, user
from features.sources import (
    item_profiles_source,
    item_stats_source,
    user_profiles_source,
    user_stats_source,
)

# Profiles are regenerated only when an entity's inputs change (jobs/profiles.py), so an inactive user's last
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


user_profile = FeatureView(
    name="user_profile",
    entities=[user],
    ttl=PROFILE_TTL,
    schema=_profile_schema("user"),
    source=user_profiles_source,
    online=True,
    description="A user's LLM profile and its embedding, as of the time the profile was generated.",
    tags={"team": "ktrec", "kind": "profile"},
)

item_profile = FeatureView(
    name="item_profile",
    entities=[item],
    ttl=PROFILE_TTL,
    schema=_profile_schema("item"),
    source=item_profiles_source,
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
    source=user_stats_source,
    online=True,
    description="Activity statistics of a user, recomputed at each as-of time by jobs/stats.py.",
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
    source=item_stats_source,
    online=True,
    description="Popularity statistics of an item, recomputed at each as-of time by jobs/stats.py.",
    tags={"team": "ktrec", "kind": "stats"},
)
