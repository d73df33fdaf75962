"""Stage 4, profiles: LLM-written user and item profiles, generated incrementally.

Enters: the lake (interactions up to the as-of time, items, users) and an LLM backend. ``inputs`` gathers
what each prompt needs, ``llm`` builds the backend and encoder the settings name, ``generate`` writes the
profiles of entities whose inputs changed and embeds them, ``table`` owns the append-only profile tables.
Leaves: the lake tables ``profiles_user`` / ``profiles_item`` (text, embedding, source hash, generator, as-of
time), the Feast sources of the profile views.
"""

from jobs.profiles.generate import run

__all__ = ["run"]
