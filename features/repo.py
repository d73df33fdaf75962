"""The one module ``feast plan`` / ``feast apply`` parse: every object of the repository, in dependency order.

Feast imports each parsed file as a top-level module (``entities``, ``views``, ...) while the definitions
import each other as ``features.*``; parsing both would register every object twice. So ``.feastignore``
hides the per-kind files and this module gathers them; ``jobs.feature_store`` applies the same list.
"""

from __future__ import annotations

from features.entities import item, user
from features.services import kt_training, kt_training_v1, online_ranking, online_ranking_v1
from features.sources import (
    item_profiles_source,
    item_stats_source,
    user_profiles_source,
    user_stats_source,
)
from features.views import item_profile, item_stats, user_profile, user_stats

OBJECTS = [
    user,
    item,
    user_profiles_source,
    item_profiles_source,
    user_stats_source,
    item_stats_source,
    user_profile,
    item_profile,
    user_stats,
    item_stats,
    kt_training_v1,
    kt_training,
    online_ranking_v1,
    online_ranking,
]
