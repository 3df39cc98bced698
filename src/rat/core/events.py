"""In-process domain events: a tiny bus that slices publish to and runtime/plugins subscribe to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

log = logging.getLogger(__name__)
SUBSCRIBER_TIMEOUT_SECONDS = 5.0

EVENT_TYPES = (
    "run_created", "run_started", "run_completed", "run_cancelled", "pipeline_created",
    "pipeline_updated", "pipeline_published", "pipeline_deleted", "file_uploaded",
    "quality_failed", "freshness_failed", "schedule_fired", "schedule_skipped", "trigger_fired",
    "table_changed", "landing_file_added",
)


class Event(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)


Subscriber = Callable[[Event], Awaitable[None] | None]


class EventBus:
    """Fan-out with per-subscriber isolation: a failing or slow subscriber never breaks the emitter."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[frozenset[str] | None, Subscriber]] = []

    def subscribe(self, subscriber: Subscriber, types: tuple[str, ...] | None = None) -> None:
        self._subscribers.append((frozenset(types) if types else None, subscriber))

    async def emit(self, type_: str, **data: Any) -> None:
        event = Event(type=type_, data=data)
        for types, subscriber in list(self._subscribers):
            if types is not None and type_ not in types:
                continue
            try:
                result = subscriber(event)
                if result is not None:
                    await asyncio.wait_for(result, SUBSCRIBER_TIMEOUT_SECONDS)
            except Exception:
                log.exception("event subscriber failed for %s", type_)
