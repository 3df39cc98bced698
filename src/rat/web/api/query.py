"""The SQL console endpoint: JSON results, or a streamed CSV / NDJSON / Arrow download."""

from typing import Any

from litestar import Request, Response, post
from litestar.response import Stream

from rat.query.models import QueryRequest
from rat.query.service import pick_format
from rat.web.access import access, read_scope
from rat.web.body import read_json
from rat.web.deps import services


@post("/query", name="api:query", status_code=200,
      opt=access("filtered", body=QueryRequest, errors=(400, 403, 404, 429, 504)))
async def run_query(request: Request[Any, Any, Any]) -> Response[bytes] | Stream:
    body = await read_json(request, QueryRequest)
    query = services(request).query
    fmt = pick_format(body, request.headers.get("accept"))
    scope = await read_scope(request)
    if fmt == "json":
        return Response(await query.run(body, scope), media_type="application/json")
    download = await query.download(body, fmt, scope)
    return Stream(download.chunks, media_type=download.media_type, headers={
        "Content-Disposition": f'attachment; filename="{download.filename}"',
        "Cache-Control": "no-store"})


ROUTES = [run_query]
