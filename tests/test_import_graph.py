"""The import graph runs one way (DESIGN.md): dags → jobs stages (in pipeline order) → features → jobs.core,
and models/ stands alone. Every import counts, lazy ones inside functions included, so a backward edge
cannot hide behind a function body. Parsed with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "jobs", "features", "dags")
# Lowest first. A module may import its own layer or a lower one, never a higher one.
STAGES = (
    "core", "ingest", "validate", "split", "profiles", "publish", "train", "registry",
    "cora", "delrec", "align", "nightly", "cli",
)


def layer(module: str) -> tuple[int, str]:
    """(rank, name) of a project module; ``models`` is its own island (rank -1, checked apart)."""
    parts = module.split(".")
    if parts[0] == "models":
        return (-1, "models")
    if parts[0] == "features":
        return (1, "features")  # above jobs.core, below every stage that publishes features
    if parts[0] == "dags":
        return (100, "dags")
    if parts[0] == "jobs" and len(parts) > 1 and parts[1] in STAGES:
        rank = STAGES.index(parts[1])
        return (0 if rank == 0 else rank + 1, f"jobs.{parts[1]}")
    return (50, module)  # jobs/__init__ and anything not yet placed: flagged by test_every_module_is_placed


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``path`` imports (``from a import b`` counts as ``a.b`` when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def backward_edges(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in edges.items():
        (src_rank, src_layer) = layer(src)
        for dst in targets:
            (dst_rank, dst_layer) = layer(dst)
            if src_layer == dst_layer:
                continue
            if src_rank == -1 or dst_rank == -1:
                if src_rank == -1:  # models imports nothing of the project outside models
                    bad.append(f"{src} -> {dst}")
                elif src_layer in ("jobs.core", "features"):  # the core imports nothing of the project
                    bad.append(f"{src} -> {dst}")
                continue
            if dst_rank > src_rank:
                bad.append(f"{src} -> {dst}")
    return sorted(bad)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), plus self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_runs_backwards():
    assert backward_edges(graph()) == []


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_every_jobs_module_sits_in_a_stage_package():
    unplaced = [m for m in project_modules() if m.startswith("jobs") and layer(m)[0] == 50 and m != "jobs"]
    assert unplaced == []


@pytest.mark.parametrize(
    ("edges", "expect_backward", "expect_cycle"),
    [
        ({"jobs.ingest.a": {"jobs.core.lake"}}, [], []),
        ({"jobs.core.lake": {"jobs.ingest.a"}}, ["jobs.core.lake -> jobs.ingest.a"], []),
        ({"models.kt": {"jobs.core.settings"}}, ["models.kt -> jobs.core.settings"], []),
        ({"jobs.validate.x": {"jobs.train.y"}}, ["jobs.validate.x -> jobs.train.y"], []),
        ({"features.sources": {"jobs.publish.store"}}, ["features.sources -> jobs.publish.store"], []),
        ({"models.a": {"models.b"}, "models.b": {"models.a"}}, [], [["models.a", "models.b"]]),
    ],
)
def test_the_checks_catch_what_they_should(edges, expect_backward, expect_cycle):
    """The two checks on hand-made graphs: a clean edge passes, each kind of violation is caught."""
    assert backward_edges(edges) == expect_backward
    assert cycles(edges) == expect_cycle
