"""Training scenarios: YAML lists of commands, parsed into typed dataclasses and checked before training.

A scenario file::

    name: bpr-kt
    commands:
      - init_model: {name: bpr, config: {embedding_dim: 64}}
      - reduce_dim: {side: user, method: pca, dim: 64}
      - set_kt: {layer: user_embedding, side: user, loss: rmse, alpha: 0.5}
      - train: {epochs: 20, lr: 0.001, weight_decay: 1.0e-5, batch_size: 2048, patience: 5, metric: ndcg@10}
      - remove_kt: {}
      - train: {epochs: 20, patience: 5}
      - eval: {split: test}
      - save: {}

``twin: true`` at the top level (or :meth:`Scenario.twin`) turns a KT scenario into its no-KT twin: the same
commands with the transfer ones (``reduce_dim``, ``set_kt``, ``remove_kt``) left out, so stages, epochs, learning
rates, early-stopping windows and seeds stay exactly those of the KT run. A top-level ``search:`` block (the
hyper-parameter space, read by jobs.train.search_space) is ignored here.

:func:`parse_scenario` checks everything that needs no model (command names, fields, types, ranges,
order) and :func:`check_model` what needs the built model (layer names, freeze patterns, widths). Both
collect every problem and raise one :class:`ScenarioError` listing them with the valid choices.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from models.kt import INDEX_RULES, LOSSES, SIDES

SPLITS = ("valid", "test")
METRIC_RE = re.compile(r"^(recall|ndcg|hr|mrr)@\d+$")


class ScenarioError(ValueError):
    """Everything wrong with a scenario, one problem per line."""

    def __init__(self, problems: list[str], source: str = "scenario") -> None:
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class InitModel:
    name: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReduceDim:
    dim: int
    side: str = "user"
    method: str = "pca"
    whiten: bool = False


@dataclass(frozen=True)
class SetKT:
    layer: str
    side: str = "user"
    loss: str = "rmse"
    alpha: float = 0.5
    standardize: bool = False  # centre + unit-variance the profiles before transfer
    index: str = "auto"  # see models.kt: auto | ids | table | batch
    output: int | None = None  # position in a tuple output


@dataclass(frozen=True)
class RemoveKT:
    pass


@dataclass(frozen=True)
class Freeze:
    modules: tuple[str, ...]


@dataclass(frozen=True)
class Unfreeze:
    modules: tuple[str, ...]


@dataclass(frozen=True)
class Train:
    epochs: int
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 2048
    patience: int | None = None  # early stopping on `metric` over the valid split; None = no stopping
    metric: str = "ndcg@10"


@dataclass(frozen=True)
class Eval:
    split: str = "test"


@dataclass(frozen=True)
class Save:
    name: str = "model"


Command = InitModel | ReduceDim | SetKT | RemoveKT | Freeze | Unfreeze | Train | Eval | Save
COMMANDS: dict[str, type] = {
    "init_model": InitModel, "reduce_dim": ReduceDim, "set_kt": SetKT, "remove_kt": RemoveKT,
    "freeze": Freeze, "unfreeze": Unfreeze, "train": Train, "eval": Eval, "save": Save,
}
# Value checks per (command, field): a predicate and the words that describe the valid values.
_CHOICES: dict[tuple[str, str], tuple[Callable[[Any], bool], str]] = {
    ("reduce_dim", "dim"): (lambda v: v > 0, "a positive integer"),
    ("reduce_dim", "side"): (lambda v: v in SIDES, f"one of {list(SIDES)}"),
    ("reduce_dim", "method"): (lambda v: v == "pca", "one of ['pca']"),
    ("set_kt", "side"): (lambda v: v in SIDES, f"one of {list(SIDES)}"),
    ("set_kt", "loss"): (lambda v: v in LOSSES, f"one of {list(LOSSES)}"),
    ("set_kt", "alpha"): (lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]"),
    ("set_kt", "index"): (lambda v: v in INDEX_RULES, f"one of {list(INDEX_RULES)}"),
    ("train", "epochs"): (lambda v: v > 0, "a positive integer"),
    ("train", "lr"): (lambda v: v > 0, "a positive number"),
    ("train", "weight_decay"): (lambda v: v >= 0, "a number >= 0"),
    ("train", "batch_size"): (lambda v: v > 0, "a positive integer"),
    ("train", "patience"): (lambda v: v is None or v > 0, "a positive integer or null"),
    ("train", "metric"): (lambda v: bool(METRIC_RE.match(v)), "recall|ndcg|hr|mrr@K, e.g. ndcg@10"),
    ("eval", "split"): (lambda v: v in SPLITS, f"one of {list(SPLITS)}"),
}


# The commands that make up the transfer; a twin is the scenario without them.
TRANSFER_COMMANDS = (ReduceDim, SetKT, RemoveKT)


@dataclass(frozen=True)
class Scenario:
    name: str
    commands: tuple[Command, ...]
    is_twin: bool = False  # built by twin(): the KT scenario with the transfer switched off

    @property
    def model(self) -> InitModel:
        return next(c for c in self.commands if isinstance(c, InitModel))

    @property
    def variant(self) -> str:
        if self.is_twin:
            return "twin"
        return "kt" if any(isinstance(c, SetKT) for c in self.commands) else "baseline"

    def twin(self) -> Scenario:
        """The no-KT twin: every command but the transfer ones, in the same order (same stages and resets)."""
        if not any(isinstance(c, SetKT) for c in self.commands):
            raise ScenarioError(["a twin needs a KT scenario: this one has no set_kt"], self.name)
        kept = tuple(c for c in self.commands if not isinstance(c, TRANSFER_COMMANDS))
        return Scenario(f"{self.name}-twin", kept, is_twin=True)

    def with_epochs(self, total: int) -> Scenario:
        """Share ``total`` epochs among the train commands in proportion to their own (at least 1 each)."""
        trains = [c for c in self.commands if isinstance(c, Train)]
        own = sum(t.epochs for t in trains) or 1
        scaled = {id(t): max(1, round(total * t.epochs / own)) for t in trains}
        return dataclasses.replace(self, commands=tuple(
            dataclasses.replace(c, epochs=scaled[id(c)]) if isinstance(c, Train) else c for c in self.commands))


def load_scenario(path: Path, *, models: dict[str, type] | None = None) -> Scenario:
    """Read and parse a scenario file (see :func:`parse_scenario`)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError([f"cannot read: {exc}"], str(path)) from exc
    return parse_scenario(data, source=str(path), models=models)


def parse_scenario(data: Any, *, source: str = "scenario", models: dict[str, type] | None = None) -> Scenario:
    """Typed scenario from loaded YAML; ``models`` (name -> class) checks ``init_model.name``."""
    if not isinstance(data, dict) or not isinstance(data.get("commands"), list) or not data["commands"]:
        raise ScenarioError(["expected a mapping with a non-empty `commands` list"], source)
    problems: list[str] = []
    commands = [_parse_command(i, raw, problems) for i, raw in enumerate(data["commands"], 1)]
    named = {next(iter(raw)) for raw in data["commands"] if isinstance(raw, dict) and len(raw) == 1}
    _check_order([c for c in commands if c is not None], problems, models)
    if "train" not in named:
        problems.append("the scenario never trains: add a train command")
    twin = data.get("twin", False)
    if not isinstance(twin, bool):
        problems.append(f"twin={twin!r} must be true or false")
    if problems:
        raise ScenarioError(problems, source)
    scenario = Scenario(str(data.get("name") or Path(source).stem), tuple(commands))
    return scenario.twin() if twin else scenario


def _parse_command(pos: int, raw: Any, problems: list[str]) -> Command | None:
    if not (isinstance(raw, dict) and len(raw) == 1):
        problems.append(f"command {pos}: expected `- <command>: {{...}}`, got {raw!r}")
        return None
    (name, args), = raw.items()
    cls = COMMANDS.get(name)
    if cls is None:
        problems.append(f"command {pos}: unknown command {name!r}; valid: {sorted(COMMANDS)}")
        return None
    if cls in (Freeze, Unfreeze):
        args = {"modules": [args] if isinstance(args, str) else args}
    args = args or {}
    if not isinstance(args, dict):
        problems.append(f"command {pos} ({name}): expected a mapping of options, got {args!r}")
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    before = len(problems)
    for key in args.keys() - fields.keys():
        problems.append(f"command {pos} ({name}): unknown option {key!r}; valid: {sorted(fields)}")
    for key in fields.keys() - args.keys():
        if fields[key].default is dataclasses.MISSING and fields[key].default_factory is dataclasses.MISSING:
            problems.append(f"command {pos} ({name}): missing required option {key!r}")
    for key in args.keys() & fields.keys():
        args[key] = _coerce(pos, name, key, args[key], fields[key].type, problems)
    if len(problems) > before:
        return None
    return cls(**args)


def _coerce(pos: int, name: str, key: str, value: Any, annotation: str, problems: list[str]) -> Any:
    where = f"command {pos} ({name}): {key}={value!r}"
    expected = {"int": int, "float": (int, float), "bool": bool, "str": str, "dict[str, Any]": dict}
    base = annotation.replace(" | None", "")
    if base == "tuple[str, ...]":
        ok = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
        if not ok:
            problems.append(f"{where} must be a module-name glob or a non-empty list of them")
        return tuple(value) if ok else value
    allowed_none = "None" in annotation and value is None
    kinds = expected.get(base)
    if kinds and not allowed_none and (not isinstance(value, kinds) or (base != "bool" and isinstance(value, bool))):
        problems.append(f"{where} must be of type {base}")
        return value
    check = _CHOICES.get((name, key))
    if check and not check[0](value):
        problems.append(f"{where} is not valid; expected {check[1]}")
    return float(value) if base == "float" else value


def _check_order(commands: list[Command], problems: list[str], models: dict[str, type] | None) -> None:
    inits = [c for c in commands if isinstance(c, InitModel)]
    if len(inits) != 1 or not isinstance(commands[0], InitModel):
        problems.append("the first command must be init_model, and only one init_model is allowed")
    if inits and models is not None and inits[0].name not in models:
        problems.append(f"init_model: unknown model {inits[0].name!r}; valid: {sorted(models)}")
    active = False
    for c in commands:
        if isinstance(c, SetKT):
            if active:
                problems.append("set_kt while a transfer is active: remove_kt first (one transfer at a time)")
            active = True
        elif isinstance(c, RemoveKT):
            if not active:
                problems.append("remove_kt without an active set_kt")
            active = False


def check_model(
    scenario: Scenario,
    model: Any,
    *,
    width_of: Callable[[str, int | None], int],
    profile_sides: set[str],
) -> None:
    """Checks that need the built model: layers exist and run, widths match, globs match, profiles exist.

    ``width_of(layer, output)`` measures a layer's output width on a real batch (models.kt.layer_width).
    """
    from fnmatch import fnmatchcase

    names = [n for n, _ in model.named_modules() if n]
    problems: list[str] = []
    reduced: dict[str, int] = {}
    for c in scenario.commands:
        if isinstance(c, ReduceDim):
            reduced[c.side] = c.dim
        elif isinstance(c, SetKT):
            if c.side not in profile_sides:
                problems.append(f"set_kt: no {c.side} profiles for this split; available: {sorted(profile_sides)}")
            if c.layer not in names:
                problems.append(f"set_kt: unknown layer {c.layer!r}; valid: {names}")
                continue
            try:
                width = width_of(c.layer, c.output)
            except ValueError as exc:
                problems.append(f"set_kt: {exc}")
                continue
            if c.side in reduced and reduced[c.side] != width:
                problems.append(f"set_kt: dimension mismatch: {c.side} profiles reduced to {reduced[c.side]} "
                                f"but layer {c.layer!r} is {width} wide; use reduce_dim dim {width}")
        elif isinstance(c, (Freeze, Unfreeze)):
            for pattern in c.modules:
                if not any(fnmatchcase(n, pattern) for n in names):
                    problems.append(f"{type(c).__name__.lower()}: {pattern!r} matches no module; valid: {names}")
    if problems:
        raise ScenarioError(problems, scenario.name)
