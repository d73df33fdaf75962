"""The ``ktrec`` command line (console entry point ``jobs.cli:app``): one command per pipeline step, exactly
as Airflow runs them, registered from one small module per stage and listed by ``ktrec --help`` in pipeline
order. Each command imports its job lazily (``ktrec --help`` stays fast), calls the job's ``run`` and prints
a summary; with ``--json`` the last line printed is one JSON object. Shared pieces live in ``common``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import typer
from typer.core import TyperGroup

from jobs.cli import (
    align,
    cora,
    delrec,
    ingest,
    nightly,
    profiles,
    publish,
    registry,
    settings,
    split,
    train,
    tune,
    validate,
)

# (name, command or sub-app) in pipeline order; `ktrec --help` lists them in this order.
STEPS: tuple[tuple[str, Callable[..., Any] | typer.Typer], ...] = (
    ("settings", settings.settings),
    ("ingest", ingest.ingest),
    ("datasets", ingest.datasets_app),
    ("validate", validate.validate),
    ("split", split.split),
    ("profiles", profiles.profiles),
    ("models", profiles.models_app),
    ("stats", publish.stats),
    ("materialize", publish.materialize),
    ("train", train.train),
    ("tune", tune.tune),
    ("register", registry.register),
    ("promote", registry.promote),
    ("cora", cora.cora_app),
    ("delrec", delrec.app),
    ("align", align.app),
    ("demo", nightly.demo),
)
PIPELINE = tuple(name for name, _ in STEPS)


class PipelineOrder(TyperGroup):
    """Lists commands in pipeline order (typer itself puts every sub-app after the plain commands)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        rank = {name: i for i, name in enumerate(PIPELINE)}
        return sorted(super().list_commands(ctx), key=lambda name: rank.get(name, len(rank)))


app = typer.Typer(
    cls=PipelineOrder,
    help="ktrec: keep LLM-enhanced recommenders fresh (lake, profiles, features, training, registry).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """ktrec: keep LLM-enhanced recommenders fresh (lake, profiles, features, training, registry)."""


for _name, _step in STEPS:
    if isinstance(_step, typer.Typer):
        app.add_typer(_step, name=_name)
    else:
        app.command(_name)(_step)
for _old, (_new, _command) in cora.ALIASES.items():
    app.command(_old, hidden=True, help=f"Old name of `ktrec cora {_new}` (kept for scripts).")(_command)
