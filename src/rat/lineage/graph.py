"""Pure lineage functions: dependencies parsed from pipeline code, and cycle detection.

SQL entry files are read through the Jinja AST (calls to `ref`/`landing_zone` with a constant
string), Python entry files through Python's `ast`; neither is ever matched with a regex.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable

import msgspec
from jinja2 import TemplateSyntaxError

from rat.engine.config import build_config
from rat.engine.render import constant_args

CALLS = ("ref", "landing_zone")


class Dependencies(msgspec.Struct, frozen=True, kw_only=True):
    """Names a pipeline reads, as written: `refs` (tables), `zones`, `checks` (relationships)."""

    refs: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()


def sql_calls(source: str) -> dict[str, list[str]]:
    try:
        return {name: constant_args(source, name) for name in CALLS}
    except TemplateSyntaxError:
        return {name: [] for name in CALLS}


def python_calls(source: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {name: [] for name in CALLS}
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in found and len(node.args) == 1 and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found[node.func.id].append(node.args[0].value)
    return found


def dependencies(files: dict[str, str]) -> Dependencies:
    """What a pipeline's files (relative paths -> text) read."""
    if "pipeline.py" in files:
        entry, python = files["pipeline.py"], True
        calls = python_calls(entry)
    else:
        entry, python = files.get("pipeline.sql", ""), False
        calls = sql_calls(entry)
    config = build_config(entry, files.get("config.yaml"), python=python).config
    checks = [str(t.args["to"]) for c in config.columns for t in c.tests
              if t.name == "relationships" and t.args.get("to")]
    return Dependencies(refs=tuple(dict.fromkeys(calls["ref"])),
                        zones=tuple(dict.fromkeys(calls["landing_zone"])),
                        checks=tuple(dict.fromkeys(checks)))


def qualify(name: str, namespace: str) -> str | None:
    """`layer.name` in `namespace` or `ns.layer.name`; None for anything else."""
    parts = name.strip().split(".")
    if len(parts) == 2 and all(parts):
        return f"{namespace}.{parts[0]}.{parts[1]}"
    if len(parts) == 3 and all(parts):
        return ".".join(parts)
    return None


def _adjacency(edges: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for source, target in edges:
        if source != target:
            graph.setdefault(source, []).append(target)
            graph.setdefault(target, [])
    return {node: sorted(set(targets)) for node, targets in graph.items()}


def find_cycle(edges: Iterable[tuple[str, str]], through: str | None = None) -> list[str] | None:
    """A cycle as `[a, b, …, a]` in the directed graph of `edges`, or None (self-loops ignored).

    With `through`, only a cycle that passes through that node counts (a publish must not be
    blamed for a cycle elsewhere). Both searches are iterative, so long chains are fine.
    """
    graph = _adjacency(edges)
    if through is not None:
        return _cycle_through(graph, through)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for root in sorted(graph):
        if root not in state:
            cycle = _dfs(graph, root, state)
            if cycle:
                return cycle
    return None


def _dfs(graph: dict[str, list[str]], root: str, state: dict[str, int]) -> list[str] | None:
    path = [root]
    stack = [iter(graph[root])]
    state[root] = 1
    while stack:
        nxt = next(stack[-1], None)
        if nxt is None:
            state[path.pop()] = 2
            stack.pop()
        elif state.get(nxt) == 1:
            return [*path[path.index(nxt):], nxt]
        elif nxt not in state:
            state[nxt] = 1
            path.append(nxt)
            stack.append(iter(graph[nxt]))
    return None


def _cycle_through(graph: dict[str, list[str]], node: str) -> list[str] | None:
    """Breadth-first from `node` back to itself: the shortest cycle through it."""
    parent: dict[str, str] = {}
    queue = deque([node])
    while queue:
        current = queue.popleft()
        for nxt in graph.get(current, []):
            if nxt == node:
                path = [current]
                while path[-1] != node:
                    path.append(parent[path[-1]])
                return [*reversed(path), node]
            if nxt not in parent:
                parent[nxt] = current
                queue.append(nxt)
    return None
