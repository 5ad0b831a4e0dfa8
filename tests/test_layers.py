"""The layers follow the message: no import cycle between packages, no upward import.

The import graph is read from the source with ``ast`` (module-level, function-level and
``TYPE_CHECKING`` imports alike, so a deferred import cannot hide a dependency) and checked
against :data:`LAYERS`: a package may import its own layer and the ones below it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.model import fingerprint

REPO = Path(__file__).resolve().parents[1]

# Lowest first. ``bot.training.data`` is the training-data contract (plain data classes, no
# I/O) that NLU components, policies (stories' ``Source``) and the knowledge base train on,
# so it sits with the foundations, below the readers of the rest of ``bot.training``.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "bot",
        "bot.errors",
        "bot.project",
        "bot.privacy",
        "bot.builtin_responses",
        "bot.training.data",
        "bot.folding",
        "bot.redis",
        "bot.settings_file",
    ),
    ("bot.config", "bot.endpoints", "bot.domain"),
    ("bot.nlu", "bot.bank"),
    ("bot.core",),
    ("bot.channels", "bot.model", "bot.training"),
    ("bot.agent", "bot.kb", "bot.evaluation", "bot.validation", "bot.train"),
    ("bot.handoff",),
    ("bot.analytics",),  # reads the tracker store's and the handoff's tables
    ("bot.server",),  # bot.server.project_settings assembles every part, server's included
    ("bot.cli", "bot.__main__"),
)
CONTRACTS = ("bot.training.data",)  # modules that are a package of their own here

# What the action server (rasa_sdk, ``actions/``) must not load: the engine.
ACTIONS_MUST_NOT_IMPORT = ("bot.core.processor", "bot.agent", "bot.model")

# Upward imports accepted for now, as (importing package, imported package) with the reason.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module of this repository
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {
        module_name(p): p for top in ("bot", "actions") for p in sorted((REPO / top).rglob("*.py"))
    }


def imports_of(name: str, path: Path, known: dict[str, Path]) -> Iterator[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # ``from bot.core import events`` imports the module bot.core.events
            targets = [
                f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin
                for a in node.names
            ]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target:
                yield Import(name, target, node.lineno)


def package_of(module: str) -> str:
    for contract in CONTRACTS:
        if module == contract or module.startswith(contract + "."):
            return contract
    parts = module.split(".")
    return parts[0] if parts[0] == "actions" else ".".join(parts[:2])


def import_graph() -> list[Import]:
    known = modules()
    return [edge for name, path in known.items() for edge in imports_of(name, path, known)]


def package_edges(graph: list[Import]) -> dict[tuple[str, str], list[Import]]:
    edges: dict[tuple[str, str], list[Import]] = {}
    for edge in graph:
        pair = (package_of(edge.module), package_of(edge.target))
        if pair[0] != pair[1]:
            edges.setdefault(pair, []).append(edge)
    return edges


def cycles(edges: dict[tuple[str, str], list[Import]]) -> list[list[str]]:
    """The strongly connected components of more than one package (Tarjan)."""
    successors: dict[str, list[str]] = {}
    for a, b in edges:
        successors.setdefault(a, []).append(b)
        successors.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in successors[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(successors):
        if node not in index:
            visit(node)
    return found


def layer_of(package: str) -> int:
    for level, members in enumerate(LAYERS):
        if package in members:
            return level
    raise AssertionError(f"{package} is in no layer of tests/test_layers.py: add it to LAYERS")


GRAPH = import_graph()
EDGES = package_edges(GRAPH)


def test_the_graph_is_read() -> None:
    """The reader sees module-level, function-level and relative imports."""
    assert any(e.module == "bot.server.app" and e.target == "bot.agent" for e in GRAPH)
    assert any(
        e.module == "bot.cli.dialogue" and e.target == "bot.evaluation.stories" for e in GRAPH
    )  # inside a function
    assert any(e.module == "actions.common" and e.target == "bot.endpoints" for e in GRAPH)
    assert ("bot.server", "bot.channels") in EDGES
    assert ("bot.core", "bot.training.data") in EDGES


def test_no_import_cycle_between_packages() -> None:
    problems = []
    for component in cycles(EDGES):
        members = set(component)
        links = [
            str(edges[0])
            for (a, b), edges in sorted(EDGES.items())
            if a in members and b in members
        ]
        problems.append(" <-> ".join(component) + ":\n    " + "\n    ".join(links))
    assert not problems, "import cycles:\n" + "\n".join(problems)


def test_every_package_has_a_layer() -> None:
    packages = {package_of(m) for m in modules()} - {"actions"}
    for package in sorted(packages):
        layer_of(package)


def test_no_upward_import() -> None:
    upward = []
    for (a, b), edges in sorted(EDGES.items()):
        if a == "actions" or (a, b) in KNOWN_EXCEPTIONS:
            continue
        if layer_of(b) > layer_of(a):
            upward.append(
                f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)}): "
                + "; ".join(str(e) for e in edges)
            )
    assert not upward, "upward imports:\n" + "\n".join(upward)


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("bot.channels", "bot.server"),
        ("bot.core", "bot.agent"),
        ("bot.core", "bot.server"),
        ("bot.core", "bot.channels"),
        ("bot.core", "bot.handoff"),
        ("bot.core", "bot.training"),
        ("bot.core", "bot.evaluation"),
        ("bot.core", "bot.cli"),
        ("bot.nlu", "bot.core"),
    ],
)
def test_named_rules_hold(importer: str, forbidden: str) -> None:
    """The rules of docs/architecture.md, also implied by LAYERS (kept should it change)."""
    assert layer_of(forbidden) > layer_of(importer)
    assert (importer, forbidden) not in EDGES, [str(e) for e in EDGES[importer, forbidden]]


def test_actions_do_not_load_the_engine() -> None:
    loaded = [
        e
        for e in GRAPH
        if package_of(e.module) == "actions"
        and any(e.target == f or e.target.startswith(f + ".") for f in ACTIONS_MUST_NOT_IMPORT)
    ]
    assert not loaded, [str(e) for e in loaded]


def test_fingerprinted_code_exists() -> None:
    """A moved module must not silently drop out of the core fingerprint."""
    for name in fingerprint._CORE_CODE:
        assert (fingerprint.PACKAGE / name).is_file(), name
