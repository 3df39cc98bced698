"""Namespace endpoints (create and delete need the rat-namespaces plugin, else 501)."""

from typing import Any

from litestar import Request, Response, delete, get, post, put

from rat.namespaces.models import Namespace, NamespaceCreate, NamespacePage, NamespaceUpdate
from rat.web.access import access, read_scope, user_id
from rat.web.body import read_json
from rat.web.deps import bool_param, int_param, services


@get("/namespaces", name="api:namespaces:list", opt=access("filtered", errors=(400,)))
async def list_namespaces(request: Request[Any, Any, Any], limit: str | None = None,
                          offset: str | None = None) -> NamespacePage:
    return await services(request).namespaces.list(
        limit=int_param(limit, "limit", 50), offset=int_param(offset, "offset", 0),
        scope=await read_scope(request))


@post("/namespaces", name="api:namespaces:create",
      opt=access("any", body=NamespaceCreate, errors=(400, 409, 501)))
async def create_namespace(request: Request[Any, Any, Any]) -> Response[Namespace]:
    body = await read_json(request, NamespaceCreate)
    created = await services(request).namespaces.create(body, created_by=user_id(request))
    return Response(created, status_code=201)


@put("/namespaces/{name:str}", name="api:namespaces:update", status_code=204,
     opt=access("A", "namespace", body=NamespaceUpdate, errors=(400, 404)))
async def update_namespace(request: Request[Any, Any, Any], name: str) -> None:
    body = await read_json(request, NamespaceUpdate)
    await services(request).namespaces.update(name, body)


@delete("/namespaces/{name:str}", name="api:namespaces:delete", status_code=204,
        opt=access("A", "namespace", errors=(403, 404, 409, 501)))
async def delete_namespace(request: Request[Any, Any, Any], name: str,
                           force: str | None = None) -> None:
    await services(request).namespaces.delete(name, force=bool_param(force, "force"))


ROUTES = [list_namespaces, create_namespace, update_namespace, delete_namespace]
