"""The hyper-parameter search space of a scenario: its top-level ``search:`` block, parsed and applied.

::

    search:
      trials: 8                 # Optuna trials per variant (KT and its twin get the same number)
      epochs: 20                # total epochs per trial, shared among the train commands (default: the conf's)
      params:
        lr: {low: 1.0e-4, high: 1.0e-2, log: true, target: train.lr}
        weight_decay: {choices: [0.0, 1.0e-6, 1.0e-5], target: train.weight_decay}
        dim: {choices: [32, 64, 128], target: init_model.config.embedding_dim}
        alpha: {low: 0.1, high: 0.9, target: set_kt.alpha}
        hook: {choices: [{layer: item_embedding, side: item}, {layer: user_embedding, side: user}], target: set_kt}

``target`` names a command and a field path: ``train.lr`` sets ``lr`` in *every* ``train`` command (the
stages keep one schedule), ``init_model.config.embedding_dim`` a key of the model config; a bare command
(``set_kt``) with mapping choices merges the chosen mapping into that command. A range with integer bounds
is an integer parameter. Parameters aimed at the transfer commands (``set_kt``, ``reduce_dim``, ``remove_kt``)
are the *transfer* parameters: the no-KT twin's space is the same block without them, so the twin and the
KT variant share every other range. Problems are collected and raised as one
:class:`models.scenario.ScenarioError`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from models.scenario import COMMANDS, ScenarioError

TRANSFER_TARGETS = ("set_kt", "reduce_dim", "remove_kt")


@dataclass(frozen=True)
class Param:
    name: str
    target: str  # "<command>[.<field>[.<key>...]]"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None

    @property
    def command(self) -> str:
        return self.target.split(".")[0]

    @property
    def transfer(self) -> bool:
        return self.command in TRANSFER_TARGETS

    def labels(self) -> list:
        """Optuna's categorical values: the choices, mappings as their JSON text (Optuna keeps primitives)."""
        return [json.dumps(c, sort_keys=True) if isinstance(c, dict) else c for c in self.choices]

    def suggest(self, trial) -> Any:
        if self.choices is not None:
            picked = trial.suggest_categorical(self.name, self.labels())
            return self.choices[self.labels().index(picked)]
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]
    trials: int = 8
    epochs: int | None = None

    def for_twin(self) -> SearchSpace:
        """The twin's space: the same ranges without the transfer parameters."""
        return SearchSpace(tuple(p for p in self.params if not p.transfer), self.trials, self.epochs)

    def suggest(self, trial) -> dict[str, Any]:
        return {p.name: p.suggest(trial) for p in self.params}

    def apply(self, data: dict, values: dict[str, Any]) -> dict:
        """A copy of the scenario's YAML data with ``values`` (param name -> value) written into the commands."""
        out = copy.deepcopy(data)
        out.pop("search", None)
        by_name = {p.name: p for p in self.params}
        for name, value in values.items():
            _set(out["commands"], by_name[name], value)
        return out


def parse_search(data: Any, *, source: str = "scenario") -> SearchSpace:
    """The ``search:`` block of a loaded scenario YAML (``data``), checked against its commands."""
    block = data.get("search") if isinstance(data, dict) else None
    if not isinstance(block, dict) or not isinstance(block.get("params"), dict) or not block["params"]:
        raise ScenarioError(["no `search:` block with a non-empty `params` mapping: see jobs/train/search_space.py"],
                            source)
    problems: list[str] = []
    for key in block.keys() - {"trials", "epochs", "params"}:
        problems.append(f"search: unknown key {key!r}; valid: ['epochs', 'params', 'trials']")
    trials, epochs = block.get("trials", 8), block.get("epochs")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        problems.append(f"search: trials={trials!r} must be a positive integer")
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1):
        problems.append(f"search: epochs={epochs!r} must be a positive integer or absent")
    named = [next(iter(c)) for c in data.get("commands") or [] if isinstance(c, dict) and len(c) == 1]
    params = [p for name, raw in block["params"].items()
              if (p := _param(name, raw, named, problems)) is not None]
    if problems:
        raise ScenarioError(problems, source)
    return SearchSpace(tuple(params), trials, epochs)


def _param(name: str, raw: Any, named: list[str], problems: list[str]) -> Param | None:
    where = f"search: {name}"
    if not isinstance(raw, dict) or not isinstance(raw.get("target"), str):
        problems.append(f"{where}: expected a mapping with a `target` (e.g. train.lr)")
        return None
    unknown = raw.keys() - {"target", "low", "high", "log", "choices"}
    if unknown:
        problems.append(f"{where}: unknown keys {sorted(unknown)}; valid: choices, high, log, low, target")
    target = raw["target"]
    command = target.split(".")[0]
    if command not in COMMANDS:
        problems.append(f"{where}: target {target!r} names no command; valid: {sorted(COMMANDS)}")
        return None
    if command not in named:
        problems.append(f"{where}: target {target!r}, but the scenario has no {command} command")
    choices = raw.get("choices")
    if choices is not None:
        if not isinstance(choices, list) or not choices:
            problems.append(f"{where}: choices must be a non-empty list")
            return None
        if "." not in target and not all(isinstance(c, dict) for c in choices):
            problems.append(f"{where}: a bare command target ({target}) takes mappings as choices")
        return Param(name, target, choices=tuple(choices))
    low, high = raw.get("low"), raw.get("high")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numbers or low >= high:
        problems.append(f"{where}: needs `choices` or numeric `low` < `high`, got low={low!r} high={high!r}")
        return None
    if raw.get("log") and low <= 0:
        problems.append(f"{where}: a log range needs low > 0")
    if "." not in target:
        problems.append(f"{where}: a range needs a field target such as {command}.<field>")
    return Param(name, target, low=low, high=high, log=bool(raw.get("log", False)))


def _set(commands: list[dict], param: Param, value: Any) -> None:
    path = param.target.split(".")[1:]
    for entry in commands:
        (name, args), = entry.items()
        if name != param.command:
            continue
        args = entry[name] = dict(args or {})
        if not path:
            args.update(value)
            continue
        node = args
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
