"""Iceberg catalog operations (pyiceberg). Blocking: the host calls these from worker threads.

Write-audit-publish on Iceberg refs: a run's writes land on branch `rat_run_{id}` created from
main; publish fast-forwards main to the branch head only if main has not moved meanwhile.
A table is created with an empty `rat.operation=create` snapshot so that even a first run can
stage on a branch; a table whose main still points at that snapshot is "not published".
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from rat.core.specs import CommitRequest, StageRequest, StageState, StorageSpec, TableState

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

CREATE_OPERATION = "create"
RUN_ID_PROPERTY = "rat.run_id"
# Commits to one table race (a run's branch commit, another run's publish, the reaper, a tag).
# pyiceberg retries only snapshot-producing commits, 4 times; ref and schema commits not at all.
COMMIT_ATTEMPTS = 10
COMMIT_BACKOFF_SECONDS = 0.02
# How long a run waits for another run's new table to get its `create` snapshot (seconds).
BASE_SNAPSHOT_WAIT = 5.0
T = TypeVar("T")


class CatalogSpec(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    uri: str
    name: str
    warehouse: str
    storage: StorageSpec
    token: str = ""
    credential: str = ""


class TableGone(Exception):
    """The table does not exist in the catalog."""


class SchemaConflict(Exception):
    """The batch changes a column's type in a way only full_refresh may apply."""


class ConcurrentChange(Exception):
    """Main moved after the run's branch was created; RAT never merges."""


class SnapshotGone(Exception):
    """The snapshot was expired or never existed."""


class SnapshotInfo(msgspec.Struct, frozen=True, kw_only=True):
    snapshot_id: int
    parent_id: int | None
    timestamp_ms: int
    operation: str
    summary: dict[str, str]


class TableSummary(msgspec.Struct, frozen=True, kw_only=True):
    namespace: str
    layer: str
    name: str
    metadata_location: str
    snapshot_id: int | None
    row_count: int
    size_bytes: int
    last_updated_ms: int | None
    published: bool
    columns: list[tuple[str, str]]
    partition_by: list[dict[str, str]]
    pipeline_id: str | None


# pyiceberg's pyarrow FileIO: attempts per S3 request (AWS standard strategy: network errors,
# 5xx and throttling, exponential backoff) and timeouts, so a short reset storm is ridden out.
S3_ATTEMPTS = 8
S3_CONNECT_TIMEOUT_SECONDS = 10
S3_REQUEST_TIMEOUT_SECONDS = 60


def s3_retry_strategy() -> Any:
    """The pyarrow S3 retry strategy; pyiceberg calls this by name (`s3.retry-strategy-impl`)."""
    from pyarrow.fs import AwsStandardS3RetryStrategy

    return AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS)


def io_properties(storage: StorageSpec) -> dict[str, str]:
    if storage.kind != "s3":
        return {}
    props = {"s3.access-key-id": storage.access_key, "s3.secret-access-key": storage.secret_key,
             "s3.region": storage.region, "s3.path-style-access": str(storage.path_style).lower(),
             "s3.connect-timeout": str(S3_CONNECT_TIMEOUT_SECONDS),
             "s3.request-timeout": str(S3_REQUEST_TIMEOUT_SECONDS),
             "s3.retry-strategy-impl": f"{__name__}.s3_retry_strategy"}
    if storage.endpoint:
        props["s3.endpoint"] = storage.endpoint
    return props


def open_catalog(spec: CatalogSpec) -> Catalog:
    props = io_properties(spec.storage)
    if spec.type == "sql":
        from pyiceberg.catalog.sql import SqlCatalog
        from sqlalchemy.exc import DBAPIError

        # Pre-ping: after a Postgres restart the pooled connections are dead; without a check
        # the next catalog call fails with "server closed the connection unexpectedly".
        try:
            return SqlCatalog(spec.name, uri=spec.uri, warehouse=spec.warehouse,
                              pool_pre_ping="true", **props)
        except DBAPIError:
            # Two processes creating the catalog's own tables at once: one CREATE TABLE loses
            # (duplicate pg_type row); the tables exist now, so the second open just reads them.
            return SqlCatalog(spec.name, uri=spec.uri, warehouse=spec.warehouse,
                              pool_pre_ping="true", **props)
    from pyiceberg.catalog import load_catalog

    rest = {"type": "rest", "uri": spec.uri, "warehouse": spec.warehouse, **props}
    if spec.token:
        rest["token"] = spec.token
    if spec.credential:
        rest["credential"] = spec.credential
    return load_catalog(spec.name, **rest)


def ident_tuple(ident: str) -> tuple[str, str, str]:
    ns, layer, name = ident.split(".")
    return ns, layer, name


def branch_name(run_id: str) -> str:
    return "rat_run_" + run_id.replace("-", "")


def is_published(table: Table) -> bool:
    snap = table.current_snapshot()
    return snap is not None and snap.summary is not None and \
        snap.summary.get("rat.operation") != CREATE_OPERATION


def _transform(name: str) -> Any:
    from pyiceberg.transforms import (
        DayTransform,
        HourTransform,
        IdentityTransform,
        MonthTransform,
        YearTransform,
    )

    return {"identity": IdentityTransform(), "day": DayTransform(), "month": MonthTransform(),
            "year": YearTransform(), "hour": HourTransform()}[name]


def _partition_field(schema: Any, entry: dict[str, str], field_id: int) -> Any:
    """One `partition_by` entry as a partition field; a bad column or transform fails clearly."""
    from pyiceberg.partitioning import PartitionField

    column, name = entry["column"], entry["transform"]
    try:
        source = schema.find_field(column)
    except ValueError:
        raise SchemaConflict(f"partition_by column {column!r} is not a column of the result") \
            from None
    transform = _transform(name)
    if not transform.can_transform(source.field_type):
        raise SchemaConflict(f"partition_by: transform {name} cannot apply to column {column!r} "
                             f"of type {duck_type(source.field_type)}")
    return PartitionField(source_id=source.field_id, field_id=field_id, transform=transform,
                          name=f"{column}_{name}")


class IcebergTables:
    """The catalog as RAT uses it. Safe to call from several threads."""

    def __init__(self, spec: CatalogSpec,
                 opener: Callable[[CatalogSpec], Catalog] = open_catalog) -> None:
        """`opener` makes the pyiceberg catalog on first use (a `catalog` plugin supplies one)."""
        self.spec = spec
        self._opener = opener
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()
        self._known_namespaces: set[tuple[str, str]] = set()
        self._commit_locks: dict[str, threading.Lock] = {}

    @property
    def catalog(self) -> Catalog:
        with self._lock:
            if self._catalog is None:
                self._catalog = self._opener(self.spec)
            return self._catalog

    def location(self, ident: str) -> str:
        ns, layer, name = ident_tuple(ident)
        return f"{self.spec.warehouse.rstrip('/')}/{ns}/{layer}/{name}"

    def load(self, ident: str) -> Table | None:
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        try:
            return self.catalog.load_table(ident_tuple(ident))
        except (NoSuchTableError, NoSuchNamespaceError):
            return None

    def _require(self, ident: str) -> Table:
        table = self.load(ident)
        if table is None:
            raise TableGone(ident)
        return table

    def state(self, ident: str) -> TableState | None:
        table = self.load(ident)
        if table is None:
            return None
        snap = table.current_snapshot()
        return TableState(ident=ident, metadata_location=table.metadata_location,
                          snapshot_id=snap.snapshot_id if snap else None,
                          published=is_published(table))

    def check(self) -> None:
        self.catalog.list_namespaces()

    def _ensure_namespace(self, ns: str, layer: str) -> None:
        """Create the layer's namespace if absent; safe when other runs or servers race us."""
        if (ns, layer) in self._known_namespaces:
            return
        try:
            self.catalog.create_namespace_if_not_exists((ns, layer))
        except Exception:
            # Another creator inserted it between the existence check and our insert; the SQL
            # catalog reports that as a unique violation, not as NamespaceAlreadyExistsError.
            if not self.catalog.namespace_exists((ns, layer)):
                raise
        self._known_namespaces.add((ns, layer))

    def _create(self, req: StageRequest, arrow_schema: Any) -> Table | None:
        """Create the table; None when another run created it first (the caller loads it)."""
        from pyiceberg.catalog import Catalog
        from pyiceberg.exceptions import TableAlreadyExistsError
        from pyiceberg.partitioning import PartitionSpec
        from pyiceberg.schema import assign_fresh_schema_ids

        ns, layer, _name = ident_tuple(req.ident)
        self._ensure_namespace(ns, layer)
        # Arrow-converted schemas carry id -1 everywhere; partition fields need real source ids.
        schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(arrow_schema, 2))
        fields = [_partition_field(schema, p, 1000 + i) for i, p in enumerate(req.partition_by)]
        try:
            return self.catalog.create_table(
                ident_tuple(req.ident), schema=schema, location=self.location(req.ident),
                partition_spec=PartitionSpec(*fields), properties=req.table_properties)
        except TableAlreadyExistsError:
            return None

    def _await_base_snapshot(self, ident: str, table: Table) -> Table:
        """Wait for the `create` snapshot of a table that another run just created.

        Its creator is about to commit that snapshot; racing it would add a second one. After
        BASE_SNAPSHOT_WAIT seconds (a creator that died) the caller commits it itself.
        """
        deadline = time.monotonic() + BASE_SNAPSHOT_WAIT
        while table.current_snapshot() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            table = self._require(ident)
        return table

    @staticmethod
    def _ensure_base_snapshot(table: Table) -> Table:
        """Give a new table its empty `create` snapshot so runs can branch from it."""
        if table.current_snapshot() is not None:
            return table
        tx = table.transaction()
        with tx.update_snapshot(snapshot_properties={"rat.operation": CREATE_OPERATION}) \
                .fast_append():
            pass
        return tx.commit_transaction()

    def prepare_stage(self, req: StageRequest) -> StageState:
        """Create or evolve the table, then open the run's branch at main's current snapshot."""
        import pyarrow as pa

        schema = pa.ipc.read_schema(pa.py_buffer(req.arrow_schema))
        table = self.load(req.ident)
        created = False
        if table is None:
            table = self._create(req, schema)
            created = table is not None
        if table is None:  # created concurrently by another run: evolve it like any table
            table = self._require(req.ident)
        if not created:
            table = self._await_base_snapshot(req.ident, table)
            table = self._retrying(req.ident, table, lambda t: self._evolve(
                t, schema, replace=req.replace_schema))
        table = self._retrying(req.ident, table, self._ensure_base_snapshot)
        branch = branch_name(req.run_id)
        table, base_id = self._retrying(req.ident, table, lambda t: _open_branch(t, branch))
        return StageState(ident=req.ident, metadata_location=table.metadata_location,
                          branch=branch, base_snapshot_id=base_id, snapshot_id=base_id,
                          created=created)

    def _retrying(self, ident: str, table: Table | None, step: Callable[[Table], T]) -> T:
        """Apply `step` (catalog commits computed from the table); redo it on a lost commit race.

        Steps on one table run one at a time in this process (all RAT commits happen in the
        parent), so only another process can race them. `table` (None: load it now) is used
        for the first attempt; each retry reloads, and `step` re-checks its own preconditions,
        so a retry never applies a decision made on stale metadata (publish raises
        ConcurrentChange when main really moved).
        """
        for attempt in range(COMMIT_ATTEMPTS):
            with self._table_lock(ident):
                if table is None:
                    table = self._require(ident)
                try:
                    return step(table)
                except Exception as exc:
                    if not _lost_race(exc) or attempt + 1 == COMMIT_ATTEMPTS:
                        raise
            table = None
            # Jittered exponential backoff, capped at ~1 s: contenders spread out.
            delay = min(COMMIT_BACKOFF_SECONDS * 2 ** attempt, 1.0)
            time.sleep(delay * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _table_lock(self, ident: str) -> threading.Lock:
        with self._lock:
            return self._commit_locks.setdefault(ident, threading.Lock())

    def _evolve(self, table: Table, schema: Any, *, replace: bool) -> Table:
        """Bring T's schema to the batch's: exactly (full_refresh) or by adding and widening."""
        if replace:
            return self._replace_schema(table, schema)
        current = {f.name: f.field_type for f in table.schema().fields}
        added, widened = [], []
        for name in schema.names:
            incoming = _iceberg_type(schema.field(name).type)
            if name not in current:
                added.append((name, incoming))
            elif _widens(current[name], incoming):
                widened.append((name, incoming))
            elif duck_type(incoming) != duck_type(current[name]) and \
                    not _widens(incoming, current[name]):
                raise SchemaConflict(f"column {name} changed type {duck_type(current[name])} → "
                                     f"{duck_type(incoming)}; use full_refresh")
        if not added and not widened:
            return table
        with table.update_schema() as upd:
            for name, field_type in added:
                upd.add_column(name, field_type)
            for name, field_type in widened:
                upd.update_column(name, field_type=field_type)
        return self._require(".".join(table.name()))

    def _replace_schema(self, table: Table, schema: Any) -> Table:
        """Make T's schema exactly the batch's: drop, retype and add in one commit."""
        current = {f.name: f.field_type for f in table.schema().fields}
        drop = [n for n in current if n not in schema.names]
        retype = [n for n in schema.names
                  if n in current and not _compatible(current[n], schema.field(n).type)]
        changed = drop or retype or any(
            n not in current or _iceberg_type(schema.field(n).type) != current[n]
            for n in schema.names)
        if not changed:
            return table
        with table.transaction() as tx:
            if drop or retype:
                with tx.update_schema(allow_incompatible_changes=True) as upd:
                    for name in [*drop, *retype]:
                        upd.delete_column(name)
            with tx.update_schema() as upd:
                upd.union_by_name(schema)
        return self._require(".".join(table.name()))

    def commit_stage(self, req: CommitRequest) -> StageState:
        """Commit removed/added data files as one snapshot on the run's branch."""
        return self._retrying(req.ident, None, lambda table: self._commit_stage(table, req))

    def _commit_stage(self, table: Table, req: CommitRequest) -> StageState:
        from pyiceberg.io.pyarrow import parquet_file_to_data_file

        head = table.metadata.refs[req.branch].snapshot_id
        if req.removed_files or req.added_files:
            removed = set(req.removed_files)
            tx = table.transaction()
            update = tx.update_snapshot(snapshot_properties=req.properties, branch=req.branch)
            producer = update.overwrite() if removed else update.fast_append()
            with producer as op:
                for data_file in self._data_files(table, head) if removed else ():
                    if data_file.file_path in removed:
                        op.delete_data_file(data_file)
                for path in req.added_files:
                    op.append_data_file(parquet_file_to_data_file(table.io, table.metadata, path))
            table = tx.commit_transaction()
            head = table.metadata.refs[req.branch].snapshot_id
        return StageState(ident=req.ident, metadata_location=table.metadata_location,
                          branch=req.branch, base_snapshot_id=_fork_point(table, head),
                          snapshot_id=head)

    @staticmethod
    def _data_files(table: Table, snapshot_id: int) -> Iterator[Any]:
        snap = table.snapshot_by_id(snapshot_id)
        if snap is None:
            return
        for manifest in snap.manifests(table.io):
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                yield entry.data_file

    def publish(self, ident: str, branch: str, base_snapshot_id: int | None) -> int:
        """Fast-forward main to the branch head and drop the branch; return the new snapshot id.

        ConcurrentChange when main is no longer `base_snapshot_id`, also when another commit
        moved it while this one was in flight: RAT never merges, so a stale stage never lands.
        """
        return self._retrying(ident, None,
                              lambda table: _fast_forward(table, branch, base_snapshot_id))

    def discard(self, ident: str, branch: str) -> bool:
        """Drop a run's branch and put back the schema main's snapshot was written with.

        A staged schema change (new, dropped or retyped columns) is table-level in Iceberg; left in
        place, the next run would build on a schema nobody published.
        """
        table = self.load(ident)
        if table is None:
            return False
        return self._retrying(ident, table, lambda t: self._discard(t, branch))

    def _discard(self, table: Table, branch: str) -> bool:
        dropped = branch in table.metadata.refs
        if dropped:
            table.manage_snapshots().remove_branch(branch).commit()
        self._restore_schema(self._require(".".join(table.name())) if dropped else table)
        return dropped

    @staticmethod
    def _restore_schema(table: Table) -> None:
        snap = table.current_snapshot()
        if snap is not None and snap.schema_id is not None:
            _use_schema(table, snap.schema_id)

    def find_run_snapshot(self, ident: str, run_id: str) -> int | None:
        """The main-ancestry snapshot a run committed, if any (crash reconciliation)."""
        table = self.load(ident)
        if table is None:
            return None
        snap = table.current_snapshot()
        while snap is not None:
            if snap.summary is not None and snap.summary.get(RUN_ID_PROPERTY) == run_id:
                return snap.snapshot_id
            snap = table.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id \
                else None
        return None

    def tag(self, ident: str, name: str, snapshot_id: int) -> None:
        """Create or move tag `name` (e.g. `rat_v3`) so snapshot expiry keeps that snapshot."""
        def step(table: Table) -> None:
            ref = table.metadata.refs.get(name)
            if ref is None or ref.snapshot_id != snapshot_id:
                table.manage_snapshots().create_tag(snapshot_id, name).commit()

        self._retrying(ident, None, step)

    def remove_tags(self, ident: str, names: list[str]) -> int:
        return self.remove_refs(ident, names, branches=False)

    def remove_refs(self, ident: str, names: list[str], *, branches: bool) -> int:
        """Drop the named tags (or branches) in one commit; main and the schema are left alone."""
        def step(table: Table) -> int:
            present = [n for n in names if n in table.metadata.refs]
            if present:
                ops = table.manage_snapshots()
                for name in present:
                    ops = ops.remove_branch(name) if branches else ops.remove_tag(name)
                ops.commit()
            return len(present)

        table = self.load(ident)
        return 0 if table is None else self._retrying(ident, table, step)

    def restore(self, ident: str, snapshot_id: int, properties: dict[str, str]) -> int:
        """Make main's content that of an older snapshot, as a new metadata-only snapshot.

        Data files are referenced, never copied: files only in the current snapshot are removed,
        files only in the old one are added back, with the old snapshot's schema.
        """
        table = self._require(ident)
        old = table.snapshot_by_id(snapshot_id)
        current = table.current_snapshot()
        if old is None or current is None:
            raise SnapshotGone(f"snapshot {snapshot_id} of {ident} is no longer retained")
        if old.schema_id is not None:
            table = _use_schema(table, old.schema_id)
        keep = {f.file_path: f for f in self._data_files(table, snapshot_id)}
        have = {f.file_path: f for f in self._data_files(table, current.snapshot_id)}
        tx = table.transaction()
        with tx.update_snapshot(snapshot_properties=properties).overwrite() as op:
            for path, data_file in have.items():
                if path not in keep:
                    op.delete_data_file(data_file)
            for path, data_file in keep.items():
                if path not in have:
                    op.append_data_file(data_file)
        table = tx.commit_transaction()
        snap = table.current_snapshot()
        assert snap is not None  # noqa: S101 - we just committed one
        return snap.snapshot_id

    def history(self, ident: str, limit: int = 50) -> list[SnapshotInfo]:
        table = self._require(ident)
        out: list[SnapshotInfo] = []
        snap = table.current_snapshot()
        while snap is not None and len(out) < limit:
            summary = dict(snap.summary.additional_properties) if snap.summary else {}
            operation = snap.summary.operation.value if snap.summary else "unknown"
            out.append(SnapshotInfo(snapshot_id=snap.snapshot_id, parent_id=snap.parent_snapshot_id,
                                    timestamp_ms=snap.timestamp_ms, operation=operation,
                                    summary={k: str(v) for k, v in summary.items()}))
            snap = table.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id \
                else None
        return out

    def summaries(self, namespace: str | None = None) -> list[TableSummary]:
        """Every table with stats from snapshot summaries (no data scans)."""
        out = []
        for ns, layer in self._layer_namespaces(namespace):
            for ident in self.catalog.list_tables((ns, layer)):
                table = self.load(".".join(ident))
                if table is not None:
                    out.append(summarize(table))
        return out

    def summary(self, ident: str) -> TableSummary | None:
        table = self.load(ident)
        return summarize(table) if table is not None else None

    def _layer_namespaces(self, namespace: str | None) -> list[tuple[str, str]]:
        from pyiceberg.exceptions import NoSuchNamespaceError

        found: list[tuple[str, str]] = []
        roots = [(namespace,)] if namespace else self.catalog.list_namespaces()
        for root in roots:
            try:
                children = self.catalog.list_namespaces(root)
            except NoSuchNamespaceError:
                continue
            found.extend((str(c[0]), str(c[1])) for c in children if len(c) == 2)
        if not found and not namespace:
            found = [(str(n[0]), str(n[1])) for n in roots if len(n) == 2]
        return sorted(set(found))

    def drop(self, ident: str) -> bool:
        from pyiceberg.exceptions import NoSuchTableError

        try:
            self.catalog.purge_table(ident_tuple(ident))
        except NoSuchTableError:
            return False
        return True


def _lost_race(exc: Exception) -> bool:
    """The commit did not land because another commit to the table got in first.

    Besides CommitFailedException, pyiceberg's SQL catalog applies a snapshot built on stale
    metadata to the fresh metadata (the branch assertion still holds) and then refuses it with a
    ValueError about its sequence number: the same lost race, raised before anything is written.
    """
    from pyiceberg.exceptions import CommitFailedException

    return isinstance(exc, CommitFailedException) or (
        isinstance(exc, ValueError) and "older than last sequence number" in str(exc))


def _fork_point(table: Table, head: int) -> int | None:
    """The newest snapshot of main's history that the branch at `head` builds on.

    This, not main's current snapshot, is what publish must find main still at: were main to
    have moved after the branch was opened, fast-forwarding to `head` would drop those commits.
    """
    main = table.metadata.refs["main"].snapshot_id
    on_main = set()
    snap = table.snapshot_by_id(main)
    while snap is not None:
        on_main.add(snap.snapshot_id)
        snap = table.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id \
            else None
    snap = table.snapshot_by_id(head)
    while snap is not None and snap.snapshot_id not in on_main:
        snap = table.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id \
            else None
    return snap.snapshot_id if snap is not None else None


def _open_branch(table: Table, branch: str) -> tuple[Table, int]:
    """(Re)create `branch` at main's current snapshot; returns the table and that snapshot id."""
    base = table.current_snapshot()
    assert base is not None  # noqa: S101 - the base snapshot is committed first
    if branch in table.metadata.refs:
        table.manage_snapshots().remove_branch(branch).commit()
    table.manage_snapshots().create_branch(base.snapshot_id, branch).commit()
    return table, base.snapshot_id


def _fast_forward(table: Table, branch: str, base_snapshot_id: int | None) -> int:
    refs = table.metadata.refs
    if branch not in refs:
        raise ConcurrentChange(f"staged branch {branch} is gone")
    if refs["main"].snapshot_id != base_snapshot_id:
        raise ConcurrentChange("table changed concurrently")
    head = refs[branch].snapshot_id
    ops = table.manage_snapshots()
    if head != base_snapshot_id:
        ops = ops.set_current_snapshot(snapshot_id=head)
    ops.remove_branch(branch).commit()
    return head


def _use_schema(table: Table, schema_id: int) -> Table:
    """Make `schema_id` the table's current schema (no-op when it already is)."""
    from pyiceberg.table.update import AssertCurrentSchemaId, SetCurrentSchemaUpdate

    if schema_id == table.metadata.current_schema_id:
        return table
    tx = table.transaction()
    # pyiceberg has no public "set current schema"; this is the same update its own
    # UpdateSchema commit emits, guarded by the schema id we read.
    tx._apply((SetCurrentSchemaUpdate(schema_id=schema_id),),  # type: ignore[call-arg]
              (AssertCurrentSchemaId(  # type: ignore[call-arg]
                  current_schema_id=table.metadata.current_schema_id),))
    return tx.commit_transaction()


def _iceberg_type(arrow_type: Any) -> Any:
    from pyiceberg.io.pyarrow import _ConvertToIcebergWithoutIDs, visit_pyarrow

    return visit_pyarrow(arrow_type, _ConvertToIcebergWithoutIDs())


def _compatible(field_type: Any, arrow_type: Any) -> bool:
    """True when the arrow type maps to the same Iceberg type or a safe widening of it."""
    from pyiceberg.exceptions import ResolveError
    from pyiceberg.schema import promote

    incoming = _iceberg_type(arrow_type)
    if incoming == field_type:
        return True
    try:
        promote(field_type, incoming)
    except ResolveError:
        return False
    return True


def _widens(old: Any, new: Any) -> bool:
    """`new` is a safe widening of `old`: int→bigint, float→double, decimal precision up."""
    from pyiceberg.types import DecimalType, DoubleType, FloatType, IntegerType, LongType

    if isinstance(old, IntegerType):
        return isinstance(new, LongType)
    if isinstance(old, FloatType):
        return isinstance(new, DoubleType)
    if isinstance(old, DecimalType) and isinstance(new, DecimalType):
        return new.scale == old.scale and new.precision > old.precision
    return False


def partition_spec(table: Any) -> list[dict[str, str]]:
    """The table's partition fields as `partition_by` entries ({column, transform})."""
    schema = table.schema()
    return [{"column": schema.find_field(f.source_id).name,
             "transform": str(f.transform).split("[")[0].lower()} for f in table.spec().fields]


def summarize(table: Table) -> TableSummary:
    ns, layer, name = (str(p) for p in table.name())
    snap = table.current_snapshot()
    summary = snap.summary if snap is not None and snap.summary is not None else None
    schema = table.schema()
    return TableSummary(
        namespace=ns, layer=layer, name=name, metadata_location=table.metadata_location,
        snapshot_id=snap.snapshot_id if snap else None,
        row_count=int(summary.get("total-records") or 0) if summary else 0,
        size_bytes=int(summary.get("total-files-size") or 0) if summary else 0,
        last_updated_ms=snap.timestamp_ms if snap else None,
        published=is_published(table),
        columns=[(f.name, duck_type(f.field_type)) for f in schema.fields],
        partition_by=partition_spec(table),
        pipeline_id=table.properties.get("rat.pipeline_id"))


_PRIMITIVES = {
    "boolean": "BOOLEAN", "int": "INTEGER", "long": "BIGINT", "float": "FLOAT", "double": "DOUBLE",
    "date": "DATE", "time": "TIME", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMP WITH TIME ZONE",
    "timestamp_ns": "TIMESTAMP_NS", "timestamptz_ns": "TIMESTAMP WITH TIME ZONE",
    "string": "VARCHAR", "uuid": "UUID", "binary": "BLOB",
}


def duck_type(field_type: Any) -> str:
    """The DuckDB name of an Iceberg type, so every API reports DuckDB type names."""
    from pyiceberg.types import DecimalType, ListType, MapType, StructType

    if isinstance(field_type, DecimalType):
        return f"DECIMAL({field_type.precision},{field_type.scale})"
    if isinstance(field_type, ListType):
        return duck_type(field_type.element_type) + "[]"
    if isinstance(field_type, MapType):
        return f"MAP({duck_type(field_type.key_type)}, {duck_type(field_type.value_type)})"
    if isinstance(field_type, StructType):
        inner = ", ".join(f"{f.name} {duck_type(f.field_type)}" for f in field_type.fields)
        return f"STRUCT({inner})"
    text = str(field_type)
    return _PRIMITIVES.get(text, "BLOB" if text.startswith("fixed") else text.upper())
