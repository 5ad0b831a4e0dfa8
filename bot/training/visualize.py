"""Stories as a graph for trainers: a Graphviz ``.dot`` file and a PNG drawn by matplotlib.

Flat stories (checkpoints and ``or`` steps expanded) share their common beginnings, as in
``rasa visualize``: the graph is a tree from START whose leaves all lead to END. Intents,
actions, slot events and active loops are drawn in different styles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.core.stories import ANY_VALUE, ActionStep, LoopStep, SlotStep, Step, Story, UserStep

NodeKind = Literal["start", "end", "intent", "action", "slot", "loop"]
START = "START"
END = "END"
# Beyond this many nodes a PNG takes minutes and is unreadable; the .dot file still works.
MAX_PNG_NODES = 3000

# Node styles by kind: Graphviz attributes, and (bbox style, fill, border, text colour).
_DOT_STYLE: dict[str, str] = {
    "start": 'shape=Mdiamond, style=filled, fillcolor="#2e7d32", fontcolor=white',
    "end": 'shape=Msquare, style=filled, fillcolor="#c62828", fontcolor=white',
    "intent": 'shape=box, style="rounded,filled", fillcolor="#dbe9ff", color="#3b6fb6"',
    "action": 'shape=box, style=filled, fillcolor=white, color="#555555"',
    "slot": 'shape=note, style=filled, fillcolor="#fff4cc", color="#b38f00"',
    "loop": 'shape=component, style=filled, fillcolor="#e2f5e1", color="#2e7d32"',
}
_PNG_STYLE: dict[str, tuple[str, str, str, str]] = {
    "start": ("round,pad=0.5", "#2e7d32", "#2e7d32", "white"),
    "end": ("round,pad=0.5", "#c62828", "#c62828", "white"),
    "intent": ("round,pad=0.4", "#dbe9ff", "#3b6fb6", "black"),
    "action": ("square,pad=0.4", "white", "#555555", "black"),
    "slot": ("round4,pad=0.4", "#fff4cc", "#b38f00", "black"),
    "loop": ("round,pad=0.4", "#e2f5e1", "#2e7d32", "black"),
}
_LEGEND = {
    "intent": "user intent",
    "action": "bot action",
    "slot": "slot set",
    "loop": "active loop",
}


@dataclass(frozen=True)
class GraphNode:
    id: str
    label: str
    kind: NodeKind


@dataclass
class StoryGraph:
    nodes: dict[str, GraphNode] = field(default_factory=dict)
    edges: dict[tuple[str, str], None] = field(default_factory=dict)  # ordered set
    children: dict[str, list[str]] = field(default_factory=dict)  # tree edges only (no END)

    def labels(self) -> dict[str, str]:
        return {node.id: node.label for node in self.nodes.values()}


def step_label(step: Step) -> tuple[NodeKind, str]:
    """The kind and label of a flat step's node."""
    if isinstance(step, UserStep):
        label = step.intent or f"“{step.text}”"
        names = sorted({str(e.get("entity")) for e in step.entities})
        return "intent", label + (f" {{{', '.join(names)}}}" if names else "")
    if isinstance(step, ActionStep):
        return "action", step.action
    if isinstance(step, SlotStep):
        return "slot", ", ".join(
            f"{name}" if value is ANY_VALUE else f"{name}={value}" for name, value in step.slots
        )
    if isinstance(step, LoopStep):
        return "loop", f"active_loop: {step.loop if step.loop is not None else 'null'}"
    raise TypeError(f"not a flat step: {step!r}; flatten the stories first")


def build_graph(stories: list[Story]) -> StoryGraph:
    """Flat stories merged on their common beginnings, START → ... → END."""
    graph = StoryGraph()
    graph.nodes[START] = GraphNode(START, "START", "start")
    graph.nodes[END] = GraphNode(END, "END", "end")
    graph.children[START] = []
    index: dict[tuple[str, str, str], str] = {}
    for story in stories:
        parent = START
        for step in story.steps:
            kind, label = step_label(step)
            key = (parent, kind, label)
            child = index.get(key)
            if child is None:
                child = f"n{len(index) + 1}"
                index[key] = child
                graph.nodes[child] = GraphNode(child, label, kind)
                graph.children[parent].append(child)
                graph.children[child] = []
                graph.edges[(parent, child)] = None
            parent = child
        graph.edges[(parent, END)] = None
    return graph


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: StoryGraph) -> str:
    """The graph in Graphviz syntax (``dot -Tpng stories.dot -o stories.png``)."""
    lines = [
        "digraph stories {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [color="#666666", arrowsize=0.7];',
    ]
    for node in graph.nodes.values():
        lines.append(f"  {node.id} [label={_quote(node.label)}, {_DOT_STYLE[node.kind]}];")
    for src, dst in graph.edges:
        lines.append(f"  {src} -> {dst};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def layout(graph: StoryGraph) -> dict[str, tuple[float, float]]:
    """Layered positions: depth from START gives the row, leaves take consecutive columns
    and every node sits centred over its children; END is one row below the deepest node."""
    pos: dict[str, tuple[float, float]] = {}
    next_column = 0.0
    # Iterative post-order walk of the tree (stories can be long).
    stack: list[tuple[str, int, bool]] = [(START, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        kids = graph.children.get(node, [])
        if not kids:
            pos[node] = (next_column, -float(depth))
            next_column += 1.0
        elif done:
            pos[node] = ((pos[kids[0]][0] + pos[kids[-1]][0]) / 2, -float(depth))
        else:
            stack.append((node, depth, True))
            stack.extend((kid, depth + 1, False) for kid in reversed(kids))
    bottom = min(y for _, y in pos.values()) - 1.0
    pos[END] = ((next_column - 1.0) / 2 if next_column else 0.0, bottom)
    return pos


def render_png(graph: StoryGraph, path: Path, title: str | None = None) -> None:
    """Draw the graph with matplotlib's Agg canvas (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    pos = layout(graph)
    columns = max(x for x, _ in pos.values()) + 1
    rows = -min(y for _, y in pos.values()) + 1
    width = max(6.0, columns * 1.9)
    height = max(4.0, rows * 0.85 + 1.0)
    dpi = min(110.0, 16000.0 / max(width, height))  # keep the image under 16000 pixels
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(-0.8, columns - 0.2)
    ax.set_ylim(-rows + 0.4, 0.6)
    artists: dict[str, Any] = {}
    for node in graph.nodes.values():
        if node.id not in pos:
            continue
        box, face, edge, colour = _PNG_STYLE[node.kind]
        x, y = pos[node.id]
        artists[node.id] = ax.text(
            x,
            y,
            node.label,
            ha="center",
            va="center",
            fontsize=8,
            color=colour,
            zorder=3,
            bbox={"boxstyle": box, "facecolor": face, "edgecolor": edge, "linewidth": 1.0},
        )
    for src, dst in graph.edges:
        to_end = dst == END  # many lines: lighter and dashed so the stories stay readable
        ax.annotate(
            "",
            xy=(0.5, 1.0),
            xycoords=artists[dst],
            xytext=(0.5, 0.0),
            textcoords=artists[src],
            zorder=0 if to_end else 1,
            arrowprops={
                "arrowstyle": "-|>",
                "color": "#bbbbbb" if to_end else "#666666",
                "lw": 0.6 if to_end else 0.8,
                "linestyle": "--" if to_end else "-",
                "shrinkA": 4,
                "shrinkB": 4,
            },
        )
    handles = [
        Patch(facecolor=_PNG_STYLE[kind][1], edgecolor=_PNG_STYLE[kind][2], label=text)
        for kind, text in _LEGEND.items()
    ]
    ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")


def write_visualization(
    stories: list[Story], dot_path: Path, png_path: Path | None = None
) -> StoryGraph:
    """Write ``dot_path`` (always) and ``png_path`` (if given and the graph has at most
    ``MAX_PNG_NODES`` nodes) for flat ``stories``."""
    graph = build_graph(stories)
    dot_path.parent.mkdir(parents=True, exist_ok=True)
    dot_path.write_text(to_dot(graph), encoding="utf-8")
    if png_path is not None and len(graph.nodes) <= MAX_PNG_NODES:
        png_path.parent.mkdir(parents=True, exist_ok=True)
        render_png(graph, png_path, f"{len(stories)} stories")
    return graph
