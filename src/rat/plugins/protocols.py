"""The plugin contract: the principal, resources, and one typed Protocol per slot (product §14).

A plugin is an object exposed by an entry point in the `rat.plugins` group (or built in). It
declares `name`, `version`, the `slots` it fills and an optional msgspec `config_type`, and
implements `activate(ctx)` (platform side, once at start-up) and/or `activate_runner(ctx)`
(runner side: called in the server *and* in every worker process).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import msgspec

from rat.engine.extensions import HookContext

if TYPE_CHECKING:
    from litestar import Request

    from rat.core.events import Event
    from rat.core.specs import StorageSpec
    from rat.engine.catalog import CatalogSpec
    from rat.storage.base import ObjectStore

Permission = Literal["read", "write", "admin"]
PERMISSIONS: tuple[Permission, ...] = ("read", "write", "admin")
ResourceType = Literal["namespace", "pipeline", "landing_zone"]
PLATFORM_SLOTS = ("auth", "authorizer", "executor", "catalog", "storage", "event_listener",
                  "feature")
RUNNER_SLOTS = ("merge_strategy", "pipeline_type", "jinja_helper", "hook")
SINGLE_SLOTS = ("auth", "authorizer", "executor", "catalog", "storage")
SLOTS = PLATFORM_SLOTS + RUNNER_SLOTS
# SQL arguments for list filters: readable namespaces and pipeline ids (NULLs = everything).
VisibleArgs = tuple[list[str] | None, list[str] | None]
HOOK_PHASES = ("pre_execute", "post_execute", "pre_write", "post_write", "pre_quality",
               "post_quality")


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling. Role `admin` bypasses grants."""

    user_id: str
    email: str = ""
    display_name: str = ""
    roles: tuple[str, ...] = ()
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


ANONYMOUS_ADMIN = Principal(user_id="anonymous", display_name="Anonymous", roles=("admin",))


class Resource(msgspec.Struct, frozen=True, kw_only=True):
    """A shareable thing; tables and runs are checked as their pipeline.

    `id` is the pipeline/zone UUID or the namespace name; `owner` is the creator (admin on it).
    """

    type: ResourceType
    id: str
    namespace: str
    owner: str | None = None


class ReadScope(msgspec.Struct, frozen=True, kw_only=True):
    """What a principal may read, for filtering lists in SQL. `None` in place of a scope = all."""

    namespaces: tuple[str, ...] = ()
    pipeline_ids: tuple[str, ...] = ()
    pipeline_keys: tuple[str, ...] = ()
    zone_ids: tuple[str, ...] = ()
    zone_keys: tuple[str, ...] = ()

    @staticmethod
    def pipeline_args(scope: ReadScope | None) -> VisibleArgs:
        """SQL arguments (readable namespaces, readable pipeline ids); NULLs = everything."""
        if scope is None:
            return None, None
        return list(scope.namespaces), list(scope.pipeline_ids)

    def allows(self, resource: Resource) -> bool:
        if resource.namespace in self.namespaces:
            return True
        ids = self.pipeline_ids if resource.type == "pipeline" else self.zone_ids
        return resource.type != "namespace" and resource.id in ids

    def allows_table(self, namespace: str, layer: str, name: str) -> bool:
        return namespace in self.namespaces or f"{namespace}.{layer}.{name}" in self.pipeline_keys

    def allows_path(self, path: str) -> bool:
        """A storage path under a readable namespace, pipeline folder or zone folder."""
        parts = path.split("/")
        if parts[0] in self.namespaces:
            return True
        if len(parts) >= 4 and parts[1] == "pipelines":
            return f"{parts[0]}.{parts[2]}.{parts[3]}" in self.pipeline_keys
        if len(parts) >= 3 and parts[1] == "landing":
            return f"{parts[0]}.{parts[2]}" in self.zone_keys
        return False


@runtime_checkable
class AuthProvider(Protocol):
    """Slot `auth`: turns a request into a principal. None = no credentials presented.

    Raises `rat.core.errors.Unauthenticated` for bad credentials and `Unavailable` when the
    identity provider cannot be reached (fail closed).
    """

    async def authenticate(self, request: Request[Any, Any, Any]) -> Principal | None: ...


class LoginFlow(msgspec.Struct, frozen=True, kw_only=True):
    """One browser login in progress (authorization code + PKCE), kept in a signed cookie.

    Only the browser that started the login holds it; it expires after `LOGIN_FLOW_SECONDS`.
    """

    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    next_url: str = "/"
    started: float


LOGIN_FLOW_SECONDS = 600


class InteractiveLogin(Protocol):
    """Optional `auth.interactive`: a browser login at an identity provider (OIDC).

    `begin` returns the URL to send the browser to and the flow to keep; `finish` turns the
    provider's callback parameters into a principal, raising `Unauthenticated` with a message fit
    for the login page (or `Unavailable` when the provider cannot be reached).
    """

    label: str

    async def begin(self, redirect_uri: str, next_url: str) -> tuple[str, LoginFlow]: ...

    async def finish(self, flow: LoginFlow, params: Mapping[str, str]) -> Principal: ...


@runtime_checkable
class Authorizer(Protocol):
    """Slot `authorizer`: permission checks and list filtering."""

    async def check(self, principal: Principal, action: Permission, resource: Resource) -> bool: ...

    async def filter(self, principal: Principal, action: Permission,
                     resources: Sequence[Resource]) -> list[Resource]: ...

    async def read_scope(self, principal: Principal) -> ReadScope | None: ...


class RunWorker(Protocol):
    """One worker leased for one run (see Executor)."""

    @property
    def pid(self) -> int | None: ...

    async def call(self, job: str, body: bytes, *, on_event: Any = None,
                   rpc: Any = None) -> bytes: ...

    def kill(self, sig: int = ...) -> None: ...


@runtime_checkable
class Executor(Protocol):
    """Slot `executor`: where runs execute. Default: `rat.runtime.workers.WorkerPool`.

    The dispatcher (claiming, leases, the quality gate, publishing) stays in the server and hands
    each claimed run to a worker the executor lends: `size` is the capacity (concurrent runs);
    `lease(retire=)` yields a worker whose `call("run", body, on_event=, rpc=)` executes the run
    (`body` is the msgpack `RunSpec`; it answers the worker's log/phase events and catalog RPCs
    until the msgpack `RunResult` comes back, raising `WorkerDied`/`JobFailed` from
    `rat.runtime.workers`), and `kill(signal)` cancels it. A remote executor runs the same worker
    entry point (`python -m rat.engine.workerproc`) elsewhere and relays its frames. `kind` must be
    `"run"`; `busy`/`alive` feed /metrics and readiness; `start`/`stop` follow the server.
    """

    kind: str
    size: int

    @property
    def busy(self) -> int: ...

    @property
    def alive(self) -> int: ...

    async def start(self) -> None: ...

    def lease(self, *, retire: bool = False) -> AbstractAsyncContextManager[RunWorker]: ...

    async def stop(self, grace: float = 5.0) -> None: ...


@runtime_checkable
class CatalogProvider(Protocol):
    """Slot `catalog`: the Iceberg catalog RAT loads, creates, stages and commits tables in.

    `open_catalog` gets RAT's resolved `rat.engine.catalog.CatalogSpec` (name, warehouse, the
    storage's IO properties) and returns a pyiceberg `Catalog`; it is called once, lazily, from a
    worker thread (never on the event loop). Default: pyiceberg SqlCatalog on the state Postgres,
    or REST.
    """

    def open_catalog(self, spec: CatalogSpec) -> Any: ...


@runtime_checkable
class StorageProvider(Protocol):
    """Slot `storage`: where files, landing zones, blobs and the warehouse live.

    `open_store` returns the blocking `rat.storage.base.ObjectStore` the platform reads, writes
    (streamed), lists, moves, deletes and stats objects with; `storage_spec` says how the engine
    (DuckDB and pyiceberg, in worker processes) addresses the same objects: a local directory or
    an S3-compatible bucket. Both are called once at start-up; an exception stops start-up.
    """

    def open_store(self, settings: Any) -> ObjectStore: ...

    def storage_spec(self, settings: Any) -> StorageSpec: ...


@runtime_checkable
class EventListener(Protocol):
    """Slot `event_listener` (many): called for every event, 5 s timeout, bounded queue."""

    async def on_event(self, event: Event) -> None: ...


class PipelineType(Protocol):
    """Slot `pipeline_type` (many): `pipeline.{file_extension}` turned into an Arrow table."""

    name: ClassVar[str]
    file_extension: ClassVar[str]

    def execute(self, source: str, context: Mapping[str, Any]) -> Any: ...


class RunHook(Protocol):
    """Slot `hook` (many): `phase` in HOOK_PHASES; called with a HookContext in the worker."""

    phase: str

    def __call__(self, ctx: HookContext) -> None: ...


JinjaHelper = Callable[..., Any]


class Plugin(Protocol):
    """What an entry point in `rat.plugins` resolves to (an instance or a zero-arg class)."""

    name: str
    version: str
    slots: tuple[str, ...]
    config_type: type[msgspec.Struct] | None
