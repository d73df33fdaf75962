"""Feature services: the named feature sets models read.

``kt_training`` and ``online_ranking`` are the moving names the trainer and the ranking service ask for
(jobs.publish.reads). Each has a pinned ``_v<N>`` twin with the same features today: a consumer that must not
change when the moving name is redefined asks for the pinned name (Feast's advice to version the features of
each model version); nothing in ktrec records which one a model used yet.
"""

from __future__ import annotations

from feast import FeatureService, FeatureView


def feature_services(views: dict[str, FeatureView]) -> list[FeatureService]:
    """The named feature sets on the given views (``features.views.feature_views``)."""
    user_profile, item_profile = views["user_profile"], views["item_profile"]
    user_stats, item_stats = views["user_stats"], views["item_stats"]
    # LLM-KT training: profile embeddings are the transfer targets; stats help the CoRA prompt and analysis.
    kt_training_v1 = FeatureService(
        name="kt_training_v1",
        features=[user_profile, item_profile, user_stats, item_stats],
        description="Training features of LLM-KT and CoRA models, version 1.",
        tags={"use": "training"},
    )
    kt_training = FeatureService(
        name="kt_training",
        features=[user_profile, item_profile, user_stats, item_stats],
        description="Training features of the current LLM-KT and CoRA models (currently = kt_training_v1).",
        tags={"use": "training", "pinned": "kt_training_v1"},
    )

    # Online ranking needs the vectors and counters, not the profile prose (smaller online-store payloads).
    online_ranking_v1 = FeatureService(
        name="online_ranking_v1",
        features=[user_profile[["embedding"]], item_profile[["embedding"]], user_stats, item_stats],
        description="Features a ranking service fetches per request, version 1.",
        tags={"use": "serving"},
    )
    online_ranking = FeatureService(
        name="online_ranking",
        features=[user_profile[["embedding"]], item_profile[["embedding"]], user_stats, item_stats],
        description="Features the current ranking service fetches per request (currently = online_ranking_v1).",
        tags={"use": "serving", "pinned": "online_ranking_v1"},
    )
    return [kt_training_v1, kt_training, online_ranking_v1, online_ranking]
