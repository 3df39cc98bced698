"""Table endpoints: list, detail, preview (with time travel), metadata, snapshots, schema."""

from typing import Any

from litestar import Request, Response, get, put

from rat.tables.models import SchemaPage, SnapshotPage, TableDetail, TableMetadataUpdate, TablePage
from rat.web.access import access, read_scope
from rat.web.body import read_json
from rat.web.deps import int_param, services

T = "/tables/{ns:str}/{layer:str}/{name:str}"


@get("/tables", name="api:tables:list", opt=access("filtered", errors=(400,)))
async def list_tables(request: Request[Any, Any, Any], namespace: str | None = None,
                      layer: str | None = None, search: str | None = None,
                      limit: str | None = None, offset: str | None = None) -> TablePage:
    return await services(request).tables.list(
        namespace=namespace or None, layer=layer or None, search=search or None,
        limit=int_param(limit, "limit", 50), offset=int_param(offset, "offset", 0),
        scope=await read_scope(request))


@get(T, name="api:tables:get", opt=access("R", "table", errors=(404,)))
async def get_table(request: Request[Any, Any, Any], ns: str, layer: str,
                    name: str) -> TableDetail:
    return await services(request).tables.detail(ns, layer, name)


@get(f"{T}/preview", name="api:tables:preview", opt=access("R", "table", errors=(400, 404)))
async def preview_table(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                        limit: str | None = None,
                        snapshot_id: str | None = None) -> Response[bytes]:
    snapshot = int_param(snapshot_id, "snapshot_id", 0) if snapshot_id else None
    raw = await services(request).tables.preview(
        ns, layer, name, limit=int_param(limit, "limit", 50), snapshot_id=snapshot)
    return Response(raw, media_type="application/json")


@put(f"{T}/metadata", name="api:tables:metadata",
     opt=access("W", "table", body=TableMetadataUpdate, errors=(400, 404)))
async def update_metadata(request: Request[Any, Any, Any], ns: str, layer: str,
                          name: str) -> TableDetail:
    body = await read_json(request, TableMetadataUpdate)
    return await services(request).tables.update_metadata(ns, layer, name, body)


@get(f"{T}/snapshots", name="api:tables:snapshots", opt=access("R", "table", errors=(400, 404)))
async def list_snapshots(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                         limit: str | None = None, offset: str | None = None) -> SnapshotPage:
    return await services(request).tables.snapshots(
        ns, layer, name, limit=int_param(limit, "limit", 50),
        offset=int_param(offset, "offset", 0))


@get("/schema", name="api:schema", opt=access("filtered", errors=(400,)))
async def get_schema(request: Request[Any, Any, Any], namespace: str | None = None,
                     layer: str | None = None) -> SchemaPage:
    return await services(request).tables.schema(namespace=namespace or None,
                                                 layer=layer or None,
                                                 scope=await read_scope(request))


ROUTES = [list_tables, get_table, preview_table, update_metadata, list_snapshots, get_schema]
