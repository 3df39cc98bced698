"""Plugin discovery, loading and status (product §14).

Discovery: the built-in Pro plugins plus every entry point in the `rat.plugins` group. Selection:
`RAT_PLUGINS` (comma list) if set, else the `rat.yaml` blocks with `enabled: true`. A plugin that
cannot be found, imported, configured or activated gets status `error` with the reason logged, and
RAT keeps serving — except for a plugin that fills a single-instance slot (auth, authorizer,
executor, catalog, storage): starting without it would silently change security or storage, so
start-up stops with a message naming the plugin.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from rat.plugins.protocols import RUNNER_SLOTS, SINGLE_SLOTS, SLOTS

log = logging.getLogger("rat.plugins")
GROUP = "rat.plugins"
BUILTIN = {
    "rat-auth": "rat.plugins.builtin.auth:plugin",
    "rat-sharing": "rat.plugins.builtin.sharing:plugin",
    "rat-namespaces": "rat.plugins.builtin.namespaces:plugin",
    "rat-audit": "rat.plugins.builtin.audit:plugin",
}
_SECRET_WORDS = ("secret", "password", "token", "key", "credential")
LISTENER_QUEUE = 1000
LISTENER_TIMEOUT_SECONDS = 5.0
RUNNER_ENV = "RAT_RUNNER_PLUGINS"
NOTIFY_MAX_BYTES = 7900
StartHook = Callable[[Any], Awaitable[None]]


class PluginError(Exception):
    """A plugin cannot be used; the message says why."""


class FatalPluginError(Exception):
    """A plugin selected for a single-instance slot failed: the server must not start."""


class PluginEntry(msgspec.Struct, kw_only=True):
    """The API's PluginEntry (api.md §6)."""

    id: str
    name: str
    kind: str
    version: str
    status: str
    slots: list[str]
    descriptor: dict[str, Any]
    config: dict[str, Any]
    addr: str
    healthy: bool
    registered_at: datetime
    updated_at: datetime
    enabled_at: datetime | None = None
    error: str | None = None


class RunnerPlugin(msgspec.Struct, kw_only=True):
    name: str
    group: str
    version: str
    package_name: str


def discover() -> dict[str, str]:
    """Entry-point name -> `module:attr` for every plugin this interpreter can see."""
    found = dict(BUILTIN)
    for ep in importlib.metadata.entry_points(group=GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def resolve(target: str) -> Any:
    """Import `module:attr`; a class is instantiated with no arguments."""
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in (attr.split(".") if attr else []):
        obj = getattr(obj, part)
    return obj() if isinstance(obj, type) else obj


def selection(plugins_env: str, blocks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Enabled plugin name -> its raw config mapping. RAT_PLUGINS overrides rat.yaml `enabled`."""
    configs: dict[str, dict[str, Any]] = {}
    for name, block in blocks.items():
        if not isinstance(block, dict):
            raise PluginError(f"rat.yaml plugins.{name} must be a mapping with enabled/config")
        config = block.get("config") or {}
        if not isinstance(config, dict):
            raise PluginError(f"rat.yaml plugins.{name}.config must be a mapping")
        configs[str(name)] = config
    if plugins_env.strip():
        names = [n.strip() for n in plugins_env.split(",") if n.strip()]
    else:
        names = [n for n, b in blocks.items() if isinstance(b, dict) and b.get("enabled")]
    return {n: configs.get(n, {}) for n in names}


def redact(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out[key] = redact(value)
        elif any(w in key.lower() for w in _SECRET_WORDS) and value:
            out[key] = "***"
        else:
            out[key] = value
    return out


class LoadedPlugin:
    """One selected plugin and what it contributed (nothing, if it failed)."""

    def __init__(self, name: str, raw_config: dict[str, Any]) -> None:
        self.name = name
        self.raw_config = raw_config
        self.obj: Any = None
        self.config: Any = None
        self.version = ""
        self.slots: tuple[str, ...] = ()
        self.error: str | None = None
        self.package = ""
        self.loaded_at = datetime.now(UTC)
        self.provided: dict[str, Any] = {}
        self.listeners: list[Any] = []
        self.routes: list[Any] = []
        self.capabilities: set[str] = set()
        self.start_hooks: list[StartHook] = []
        self.observers: list[Any] = []
        self.runner: dict[str, list[str]] = {}

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def kind(self) -> str:
        return "runner" if self.slots and set(self.slots) <= set(RUNNER_SLOTS) else "platform"

    def fail(self, reason: str) -> None:
        self.error = reason
        self.provided, self.listeners, self.routes = {}, [], []
        self.capabilities, self.start_hooks, self.runner = set(), [], {}
        self.observers = []
        log.error("plugin %s disabled: %s", self.name, reason)


class PluginContext:
    """Passed to `plugin.activate(ctx)`: how a plugin contributes to the platform side."""

    def __init__(self, loaded: LoadedPlugin, settings: Any) -> None:
        self._p = loaded
        self.settings = settings
        self.config = loaded.config

    def provide(self, slot: str, impl: Any) -> None:
        if slot not in self._p.slots:
            raise PluginError(f"provides slot {slot!r} it did not declare")
        if slot == "event_listener":
            self._p.listeners.append(impl)
        else:
            self._p.provided[slot] = impl

    def add_routes(self, handlers: list[Any]) -> None:
        self._p.routes.extend(handlers)

    def add_capability(self, name: str) -> None:
        self._p.capabilities.add(name)

    def add_request_observer(self, observer: Any) -> None:
        """`await observer(request_info)` after every state-changing request (see audit)."""
        self._p.observers.append(observer)

    def on_start(self, hook: StartHook) -> None:
        """`hook(runtime)` runs at start-up with the database and services available."""
        self._p.start_hooks.append(hook)


class RunnerContext:
    """Passed to `plugin.activate_runner(ctx)` in the server and in every worker process."""

    def __init__(self, loaded: LoadedPlugin | None = None, config: Any = None) -> None:
        self._p = loaded
        self.config = loaded.config if loaded is not None else config

    def _note(self, group: str, name: str) -> None:
        if self._p is not None:
            self._p.runner.setdefault(group, []).append(name)

    def add_strategy(self, strategy: type[Any]) -> None:
        from rat.engine.write import register_strategy

        register_strategy(strategy)
        self._note("rat.strategies", strategy.name)

    def add_pipeline_type(self, pipeline_type: Any) -> None:
        from rat.engine.extensions import PIPELINE_TYPES

        PIPELINE_TYPES[pipeline_type.name] = pipeline_type
        self._note("rat.pipeline_types", pipeline_type.name)

    def add_jinja_helper(self, name: str, fn: Callable[..., Any]) -> None:
        from rat.engine.extensions import JINJA_HELPERS

        JINJA_HELPERS[name] = fn
        self._note("rat.jinja_helpers", name)

    def add_hook(self, phase: str, fn: Callable[[Any], None]) -> None:
        from rat.engine.extensions import HOOKS
        from rat.plugins.protocols import HOOK_PHASES

        if phase not in HOOK_PHASES:
            raise PluginError(f"hook phase {phase!r} is not one of {', '.join(HOOK_PHASES)}")
        HOOKS.setdefault(phase, []).append(fn)
        self._note("rat.hooks", f"{phase}:{getattr(fn, '__name__', type(fn).__name__)}")


def _package_of(target: str) -> tuple[str, str]:
    top = target.split(":", 1)[0].split(".", 1)[0]
    for dist_name in importlib.metadata.packages_distributions().get(top, []):
        try:
            return dist_name, importlib.metadata.version(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return top, ""


def _check_declaration(obj: Any) -> tuple[str, ...]:
    slots = tuple(getattr(obj, "slots", ()) or ())
    unknown = [s for s in slots if s not in SLOTS]
    if not slots or unknown:
        raise PluginError(f"declares unknown or no slots {unknown or list(slots)}; "
                          f"known slots: {', '.join(SLOTS)}")
    return slots


def parse_config(obj: Any, raw: dict[str, Any]) -> Any:
    config_type = getattr(obj, "config_type", None)
    if config_type is None:
        return raw
    try:
        return msgspec.convert(raw, config_type, strict=False)
    except msgspec.ValidationError as exc:
        raise PluginError(f"invalid config: {exc}") from None


def load_one(name: str, raw: dict[str, Any], targets: dict[str, str],
             settings: Any) -> LoadedPlugin:
    """Import, configure and activate one plugin; never raises (failures become `error`)."""
    loaded = LoadedPlugin(name, raw)
    target = targets.get(name)
    if target is None:
        loaded.fail(f"plugin {name!r} not found: no entry point of that name in group {GROUP!r}")
        return loaded
    try:
        loaded.package, loaded.version = _package_of(target)
        obj = resolve(target)
        loaded.obj = obj
        loaded.slots = _check_declaration(obj)
        loaded.version = str(getattr(obj, "version", "") or loaded.version)
        loaded.config = parse_config(obj, raw)
        if hasattr(obj, "activate"):
            obj.activate(PluginContext(loaded, settings))
        if hasattr(obj, "activate_runner"):
            obj.activate_runner(RunnerContext(loaded))
    except PluginError as exc:
        loaded.fail(str(exc))
    except Exception as exc:
        loaded.fail(f"{type(exc).__name__}: {exc}")
    return loaded


class ListenerQueue:
    """One event listener behind a bounded queue.

    A slow listener drops events (counted) and never slows the emitter; each call has 5 s.
    """

    def __init__(self, name: str, listener: Any, maxsize: int = LISTENER_QUEUE) -> None:
        self.name = name
        self.listener = listener
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.failed = 0
        self.task: asyncio.Task[None] | None = None

    def offer(self, event: Any) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await asyncio.wait_for(self.listener.on_event(event), LISTENER_TIMEOUT_SECONDS)
            except Exception as exc:
                self.failed += 1
                log.warning("event listener %s failed on %s: %s", self.name, event.type,
                            f"{type(exc).__name__}: {exc}")


class PgNotify:
    """Forwards events to `NOTIFY rat_events`.

    A payload over Postgres' 8000-byte limit is cut down to the event type.
    """

    def __init__(self, db: Any) -> None:
        from rat.db.queries import load_queries

        self.db = db
        self.query = load_queries("rat.plugins")["notify_event"]

    async def on_event(self, event: Any) -> None:
        payload = msgspec.json.encode({"type": event.type, "data": event.data}).decode()
        if len(payload.encode()) > NOTIFY_MAX_BYTES:
            payload = msgspec.json.encode({"type": event.type, "data": {}}).decode()
        await self.db.exec(self.query, payload)


class PluginHost:
    """The selected plugins and what they fill: slots, routes, capabilities, listeners."""

    def __init__(self, plugins: list[LoadedPlugin]) -> None:
        self.plugins = {p.name: p for p in plugins}
        self.queues: list[ListenerQueue] = []

    @classmethod
    def load(cls, settings: Any) -> PluginHost:
        """Select and load plugins. Raises FatalPluginError for a broken single-slot plugin."""
        try:
            chosen = selection(settings.plugins, settings.plugin_config)
        except PluginError as exc:
            raise FatalPluginError(str(exc)) from None
        targets = discover()
        host = cls([load_one(n, c, targets, settings) for n, c in chosen.items()])
        host._check_requirements()
        host._check_single_slots()
        return host

    def _check_requirements(self) -> None:
        for p in self.plugins.values():
            missing = [r for r in getattr(p.obj, "requires", ()) or ()
                       if not (r in self.plugins and self.plugins[r].ok)]
            if p.ok and missing:
                p.fail(f"requires plugin(s) {', '.join(missing)} to be enabled")

    def _check_single_slots(self) -> None:
        owners: dict[str, str] = {}
        for p in self.plugins.values():
            single = [s for s in p.slots if s in SINGLE_SLOTS]
            if single and not p.ok:
                raise FatalPluginError(f"plugin {p.name} (slot {', '.join(single)}) failed: "
                                       f"{p.error}")
            for slot in p.provided:
                if slot in SINGLE_SLOTS and slot in owners:
                    raise FatalPluginError(f"plugins {owners[slot]} and {p.name} both fill the "
                                           f"single-instance slot {slot!r}")
                owners[slot] = p.name

    def active(self) -> list[LoadedPlugin]:
        return [p for p in self.plugins.values() if p.ok]

    def slot(self, name: str) -> Any:
        for p in self.active():
            if name in p.provided:
                return p.provided[name]
        return None

    def slot_owner(self, name: str) -> str | None:
        return next((p.name for p in self.active() if name in p.provided), None)

    def enabled(self, name: str) -> bool:
        p = self.plugins.get(name)
        return p is not None and p.ok

    @property
    def capabilities(self) -> set[str]:
        return {c for p in self.active() for c in p.capabilities}

    def observers(self) -> list[Any]:
        return [o for p in self.active() for o in p.observers]

    def routes(self) -> list[Any]:
        return [r for p in self.plugins.values() for r in p.routes]

    async def start(self, runtime: Any, events: Any) -> None:
        """Run start hooks (database and services are up) and attach event listeners.

        Every event is also sent as a Postgres NOTIFY on `rat_events`, through the same bounded
        queue as a plugin listener so the emitter never waits for the database.
        """
        for p in self.active():
            for hook in p.start_hooks:
                try:
                    await hook(runtime)
                except Exception as exc:
                    p.fail(f"start failed: {type(exc).__name__}: {exc}")
                    break
        self._check_single_slots()
        listeners = [(p.name, lst) for p in self.active() for lst in p.listeners]
        if getattr(runtime, "db", None) is not None:
            listeners.append(("postgres-notify", PgNotify(runtime.db)))
        for name, listener in listeners:
            queue = ListenerQueue(name, listener)
            queue.task = asyncio.create_task(queue.run(), name=f"rat-listener-{name}")
            self.queues.append(queue)
            events.subscribe(queue.offer)

    async def stop(self) -> None:
        for queue in self.queues:
            if queue.task is not None:
                queue.task.cancel()
        self.queues = []

    def features(self) -> dict[str, Any]:
        caps = self.capabilities
        pro = any(p.name in BUILTIN for p in self.active())
        return {"edition": "pro" if pro else "community", "namespaces": "namespaces" in caps,
                "multi_user": self.slot("auth") is not None, "landing_zones": True,
                "capabilities": sorted(caps),
                "plugins": {p.name: {"enabled": p.ok, "type": p.kind}
                            for p in self.plugins.values()}}

    def entries(self) -> list[PluginEntry]:
        return [PluginEntry(
            id=p.name, name=p.name, kind=p.kind, version=p.version,
            status="enabled" if p.ok else "error", error=p.error, slots=list(p.slots),
            descriptor={"package": p.package, "capabilities": sorted(p.capabilities),
                        "runner": p.runner,
                        "dropped_events": sum(q.dropped for q in self.queues if q.name == p.name)},
            config=redact(p.raw_config), addr="", healthy=p.ok, registered_at=p.loaded_at,
            enabled_at=p.loaded_at if p.ok else None, updated_at=p.loaded_at)
            for p in self.plugins.values()]

    def runner_plugins(self) -> list[RunnerPlugin]:
        return [RunnerPlugin(name=item, group=group, version=p.version, package_name=p.package)
                for p in self.active() for group, items in p.runner.items() for item in items]

    def runner_env(self) -> str:
        """JSON for worker processes: the runner-side plugins that loaded, with their config."""
        return msgspec.json.encode({p.name: p.raw_config for p in self.active()
                                    if p.runner}).decode()
