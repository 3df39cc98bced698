"""The merge-strategy registry: six built-ins, plugins get default hooks, no shadowing."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from rat.engine.config import BUILTIN_STRATEGIES, STRATEGY_KEYS, PipelineConfig
from rat.engine.strategies import STRATEGIES
from rat.engine.write import Strategy, WritePlan, register_strategy


def test_every_builtin_is_registered_with_its_required_keys() -> None:
    assert {name: STRATEGIES[name].required for name in BUILTIN_STRATEGIES} == BUILTIN_STRATEGIES


class ProtocolOnly:
    """A plugin that implements only the documented protocol."""

    name = "demo_protocol_only"
    required: ClassVar[tuple[str, ...]] = ("unique_key",)
    replace_schema = False

    def plan(self, ctx: Any) -> WritePlan:
        return WritePlan()


def test_protocol_only_plugin_gets_default_hooks() -> None:
    import pyarrow as pa

    register_strategy(ProtocolOnly)
    try:
        strategy = STRATEGIES["demo_protocol_only"]()
        assert isinstance(strategy, Strategy)
        assert STRATEGY_KEYS["demo_protocol_only"] == ("unique_key",)
        schema = pa.schema([("id", pa.int64())])
        assert strategy.table_schema(schema, PipelineConfig()) is schema
        assert strategy.empty_warnings(PipelineConfig()) == []
        assert strategy.writes_empty is False
    finally:
        STRATEGIES.pop("demo_protocol_only")
        STRATEGY_KEYS.pop("demo_protocol_only")


def test_builtins_cannot_be_replaced() -> None:
    class Fake(ProtocolOnly):
        name = "scd2"

    with pytest.raises(ValueError, match="built in"):
        register_strategy(Fake)
