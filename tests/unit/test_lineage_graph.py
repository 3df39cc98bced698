"""Lineage parsing (Jinja AST, Python ast, relationships tests) and cycle detection."""

from __future__ import annotations

from rat.lineage.graph import dependencies, find_cycle, qualify


def test_sql_dependencies_come_from_constant_calls() -> None:
    files = {"pipeline.sql": (
        "-- ref('silver.in_a_comment') is plain text\n"
        "SELECT * FROM {{ ref('silver.orders') }} o JOIN {{ ref('crm.gold.customers') }} c\n"
        "  ON true, read_csv('{{ landing_zone(\"drops\") }}')\n"
        "{% if is_incremental() %}WHERE x > 1{% endif %}"),
        "config.yaml": ("columns:\n  - name: customer_id\n    tests:\n"
                        "      - relationships: {to: silver.customers, field: id}\n")}
    deps = dependencies(files)
    assert deps.refs == ("silver.orders", "crm.gold.customers")
    assert deps.zones == ("drops",)
    assert deps.checks == ("silver.customers",)


def test_python_dependencies_use_the_ast() -> None:
    files = {"pipeline.py": ("a = ref('bronze.raw')\n# ref('bronze.comment')\n"
                             "b = landing_zone('inbox')\nc = ref(name)\n"
                             "s = \"ref('bronze.string')\"\n")}
    deps = dependencies(files)
    assert deps.refs == ("bronze.raw",)
    assert deps.zones == ("inbox",)


def test_broken_code_has_no_dependencies() -> None:
    assert dependencies({"pipeline.sql": "SELECT {{ ref('x.y') "}).refs == ()
    assert dependencies({"pipeline.py": "def (:"}).refs == ()


def test_qualify() -> None:
    assert qualify("silver.orders", "default") == "default.silver.orders"
    assert qualify("crm.silver.orders", "default") == "crm.silver.orders"
    assert qualify("orders", "default") is None
    assert qualify("a.b.c.d", "default") is None


def test_find_cycle() -> None:
    assert find_cycle([("a", "b"), ("b", "c"), ("a", "c")]) is None
    assert find_cycle([("a", "a")]) is None
    assert find_cycle([("a", "b"), ("b", "c"), ("c", "a")]) == ["a", "b", "c", "a"]


def test_find_cycle_through_a_node_ignores_cycles_elsewhere() -> None:
    edges = [("x", "y"), ("y", "x"), ("p", "x")]
    assert find_cycle(edges) == ["x", "y", "x"]
    assert find_cycle(edges, through="p") is None
    edges.append(("y", "p"))
    assert find_cycle(edges, through="p") == ["p", "x", "y", "p"]


def test_long_chains_do_not_recurse() -> None:
    chain = [(f"n{i}", f"n{i + 1}") for i in range(5000)]
    assert find_cycle(chain) is None
    assert find_cycle([*chain, ("n5000", "n0")], through="n0") is not None
