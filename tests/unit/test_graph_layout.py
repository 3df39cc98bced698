"""The lineage layout: ranks follow dependencies, boxes never overlap, cycles do not hang."""

from __future__ import annotations

import itertools

from rat.web.graph import GraphNode, layout


def _node(node_id: str) -> GraphNode:
    return GraphNode(id=node_id, label=node_id, kind="pipeline", href=f"/{node_id}")


def _overlap(a: object, b: object) -> bool:
    return not (a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y)  # type: ignore[attr-defined]


def test_chain_is_laid_out_left_to_right() -> None:
    ids = ["zone", "bronze", "t_bronze", "silver", "t_silver", "gold"]
    edges = list(itertools.pairwise(ids))
    out = layout([_node(i) for i in reversed(ids)], [(s, t, "ref") for s, t in edges])
    x = {p.node.id: p.x for p in out.nodes}
    assert [x[i] for i in ids] == sorted(x[i] for i in ids)
    assert len(set(x.values())) == len(ids)
    assert all(p.x + p.w <= out.width and p.y + p.h <= out.height for p in out.nodes)
    assert len(out.edges) == len(edges)
    assert all(e.path.startswith("M") for e in out.edges)


def test_longest_path_ranks_and_no_overlap() -> None:
    nodes = [_node(i) for i in "abcdefg"]
    edges = [("a", "b", "ref"), ("b", "c", "ref"), ("a", "c", "ref"), ("d", "c", "ref"),
             ("e", "f", "ref")]
    out = layout(nodes, edges)
    x = {p.node.id: p.x for p in out.nodes}
    assert x["a"] < x["b"] < x["c"]
    assert x["d"] == x["a"]  # a source
    for a, b in itertools.combinations(out.nodes, 2):
        assert not _overlap(a, b), (a.node.id, b.node.id)


def test_cycles_and_unknown_endpoints_are_tolerated() -> None:
    out = layout([_node("a"), _node("b")], [("a", "b", "ref"), ("b", "a", "ref"),
                                            ("a", "zzz", "ref"), ("a", "a", "ref")])
    assert {p.node.id for p in out.nodes} == {"a", "b"}
    assert len(out.edges) == 3  # a→b, the back edge b→a and the self loop are drawn
    empty = layout([], [])
    assert empty.nodes == []
    assert empty.width == 0
