"""The SQL console endpoint."""

from typing import Any

from litestar import Request, Response, post

from rat.query.service import QueryRequest
from rat.web.access import access, read_scope
from rat.web.body import read_json
from rat.web.deps import services


@post("/query", name="api:query", status_code=200,
      opt=access("filtered", body=QueryRequest, errors=(400, 403, 404, 429, 504)))
async def run_query(request: Request[Any, Any, Any]) -> Response[bytes]:
    body = await read_json(request, QueryRequest)
    result = await services(request).query.run(body, await read_scope(request))
    return Response(result, media_type="application/json")


ROUTES = [run_query]
