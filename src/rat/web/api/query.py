"""The SQL console endpoint."""

from typing import Any

from litestar import Request, Response, post

from rat.query.service import QueryRequest
from rat.web.body import read_json
from rat.web.deps import services


@post("/query", name="api:query", status_code=200)
async def run_query(request: Request[Any, Any, Any]) -> Response[bytes]:
    body = await read_json(request, QueryRequest)
    return Response(await services(request).query.run(body), media_type="application/json")


ROUTES = [run_query]
