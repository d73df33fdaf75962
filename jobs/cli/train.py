"""``ktrec train``: train one CF model by a scenario YAML (baseline or LLM-KT) on a lake split and write
the run folder (metrics, model, scenario) that ``ktrec register`` logs; ``--num-processes N`` trains on N
data-parallel ranks started by Spark's TorchDistributor (jobs.train.distributed). A bad scenario, a missing split,
missing profiles or a failed rank exits 1, the code tests/test_trainer.py pins.
"""

from __future__ import annotations

from pathlib import Path

import typer

from jobs.cli.common import JsonOpt, emit, known_errors


# LookupError: no profiles before the cut-off; exit 1 pinned by test_trainer. A failed rank
# (jobs.train.distributed.DistributedTrainingError, a known project error) exits 1 too.
@known_errors(LookupError, code=1)
def train(
    scenario: Path = typer.Option(..., "--scenario", exists=True, dir_okay=False, help="Scenario YAML (see conf/)."),
    split: str = typer.Option(..., "--split", help="Split table name (lake splits/<name>)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default: settings.seed)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Total epochs, shared among the train commands."),
    generator: str | None = typer.Option(
        None, "--generator",
        help="Use only profiles of this generator prefix (read from the lake's profile history; default: Feast)."),
    output_dir: Path | None = typer.Option(None, "--output-dir", help="Run folder (default under runs/)."),
    twin: bool = typer.Option(
        False, "--twin", help="Run the KT scenario's no-KT twin: the same stages, epochs, learning rates, "
        "early-stopping windows and seed, with the transfer commands left out."),
    num_processes: int | None = typer.Option(
        None, "--num-processes", min=1,
        help="Data-parallel ranks (DDP, gloo) started by Spark's TorchDistributor; 1 is the one-process trainer "
        "(default: settings train.num_processes, 1)."),
    as_json: bool = JsonOpt,
) -> None:
    """Train a CF model by a scenario (baseline or LLM-KT) on a split; writes metrics, model and scenario."""
    from jobs.core.settings import get_settings
    from jobs.train.distributed import run

    s = get_settings()
    summary = run(s, scenario=scenario, split=split, seed=s.seed if seed is None else seed, epochs=epochs,
                  generator=generator, output_dir=output_dir, progress=not as_json, num_processes=num_processes,
                  twin=twin)
    emit(summary, as_json)
