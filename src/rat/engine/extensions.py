"""Runner-side plugin registries: Jinja helpers, run hooks and pipeline types.

Filled by `rat.plugins.runner` in every worker process (and in the server, for validation).
Merge strategies register through `rat.engine.write.register_strategy`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from rat.core.specs import RunSpec


class HookContext(msgspec.Struct, kw_only=True):
    """What a run hook sees: the phase and the run's identity."""

    phase: str
    run_id: str
    namespace: str
    layer: str
    name: str
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)

JINJA_HELPERS: dict[str, Callable[..., Any]] = {}
HOOKS: dict[str, list[Callable[[Any], None]]] = {}
PIPELINE_TYPES: dict[str, Any] = {}


def run_hooks(phase: str, spec: RunSpec, metadata: dict[str, Any]) -> None:
    """Call the hooks registered for `phase` (pre_/post_ + execute, write, quality)."""
    hooks = HOOKS.get(phase)
    if not hooks:
        return
    ctx = HookContext(phase=phase, run_id=spec.run_id, namespace=spec.namespace,
                      layer=spec.layer, name=spec.name, metadata=metadata)
    for hook in hooks:
        hook(ctx)
