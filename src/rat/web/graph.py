"""Server-side layered layout of the lineage DAG for an SVG drawing (no JavaScript library).

A small Sugiyama-style layout: ranks by longest path from the sources, a few barycenter sweeps
to reduce crossings, then fixed-size boxes on a grid and cubic edges between box sides.
Back edges of a cycle (which lineage should never have) are ignored for ranking, not dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import msgspec

NODE_W = 220  # fits a 26-character label in 13 px monospace
NODE_H = 46
GAP_X = 40
GAP_Y = 22
MARGIN = 16
SWEEPS = 4


class GraphNode(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    label: str
    kind: str
    href: str
    status: str = ""
    detail: str = ""


class PlacedNode(msgspec.Struct, frozen=True, kw_only=True):
    node: GraphNode
    x: int
    y: int
    w: int = NODE_W
    h: int = NODE_H


class PlacedEdge(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    target: str
    kind: str
    path: str


class Layout(msgspec.Struct, frozen=True, kw_only=True):
    nodes: list[PlacedNode]
    edges: list[PlacedEdge]
    width: int
    height: int


def _acyclic(ids: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Successor lists without the back edges a depth-first search finds."""
    succ: dict[str, list[str]] = defaultdict(list)
    for s, t in edges:
        if s != t:
            succ[s].append(t)
    state: dict[str, int] = {}
    kept: dict[str, list[str]] = defaultdict(list)
    for root in ids:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) != 1:  # not an ancestor on the current path
                kept[node].append(child)
                if child not in state:
                    state[child] = 1
                    stack.append((child, iter(succ[child])))
    return kept


def _ranks(ids: Sequence[str], succ: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path rank from the sources (Kahn's order over the acyclic edges)."""
    indegree = dict.fromkeys(ids, 0)
    for targets in succ.values():
        for t in targets:
            indegree[t] += 1
    rank = dict.fromkeys(ids, 0)
    ready = [n for n in ids if indegree[n] == 0]
    while ready:
        node = ready.pop()
        for t in succ.get(node, []):
            rank[t] = max(rank[t], rank[node] + 1)
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
    return rank


def _order(layers: list[list[str]], succ: dict[str, list[str]]) -> list[list[str]]:
    """Barycenter sweeps: place each node near the mean position of its neighbours."""
    pred: dict[str, list[str]] = defaultdict(list)
    for s, targets in succ.items():
        for t in targets:
            pred[t].append(s)
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        indices = range(1, len(layers)) if down else range(len(layers) - 2, -1, -1)
        for i in indices:
            ref = {n: k for k, n in enumerate(layers[i - 1 if down else i + 1])}
            near = pred if down else succ

            def key(node: str, ref: dict[str, int] = ref, near: dict[str, list[str]] = near,
                    layer: list[str] = layers[i]) -> float:
                hits = [ref[n] for n in near.get(node, []) if n in ref]
                return sum(hits) / len(hits) if hits else float(layer.index(node))

            layers[i] = sorted(layers[i], key=key)
    return layers


def _edge_path(a: PlacedNode, b: PlacedNode) -> str:
    x1, y1 = a.x + a.w, a.y + a.h // 2
    x2, y2 = b.x, b.y + b.h // 2
    if x2 <= x1:  # a back edge: loop below the boxes
        low = max(a.y + a.h, b.y + b.h) + GAP_Y
        return f"M{x1},{y1} C{x1 + 40},{low} {x2 - 40},{low} {x2},{y2}"
    mid = (x1 + x2) // 2
    return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"


def layout(nodes: Sequence[GraphNode], edges: Sequence[tuple[str, str, str]]) -> Layout:
    """Place `nodes` left to right by dependency; `edges` are (source, target, kind)."""
    if not nodes:
        return Layout(nodes=[], edges=[], width=0, height=0)
    ids = [n.id for n in nodes]
    known = set(ids)
    pairs = [(s, t, k) for s, t, k in edges if s in known and t in known]
    succ = _acyclic(ids, ((s, t) for s, t, _ in pairs))
    rank = _ranks(ids, succ)
    layers: list[list[str]] = [[] for _ in range(max(rank.values()) + 1)]
    for node_id in sorted(ids, key=lambda n: (rank[n], n)):
        layers[rank[node_id]].append(node_id)
    layers = _order(layers, succ)
    tallest = max(len(layer) for layer in layers)
    height = MARGIN * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y
    by_id = {n.id: n for n in nodes}
    placed: dict[str, PlacedNode] = {}
    for col, layer in enumerate(layers):
        top = MARGIN + (height - 2 * MARGIN - (len(layer) * (NODE_H + GAP_Y) - GAP_Y)) // 2
        for row, node_id in enumerate(layer):
            placed[node_id] = PlacedNode(node=by_id[node_id], x=MARGIN + col * (NODE_W + GAP_X),
                                         y=top + row * (NODE_H + GAP_Y))
    width = MARGIN * 2 + len(layers) * (NODE_W + GAP_X) - GAP_X
    placed_edges = [PlacedEdge(source=s, target=t, kind=k,
                               path=_edge_path(placed[s], placed[t])) for s, t, k in pairs]
    return Layout(nodes=[placed[i] for i in ids], edges=placed_edges, width=width, height=height)
