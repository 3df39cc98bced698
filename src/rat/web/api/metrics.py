"""GET /metrics: Prometheus text, optionally behind `Authorization: Bearer RAT_METRICS_TOKEN`."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get

from rat.core.errors import envelope
from rat.web.access import access
from rat.web.deps import services

CONTENT_TYPE = "text/plain; version=0.0.4"  # Litestar appends "; charset=utf-8"


def _authorized(request: Request[Any, Any, Any], token: str) -> bool:
    if not token:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())


# Public to the auth plugins: RAT_METRICS_TOKEN, not a user session, protects the scrape.
@get("/metrics", name="metrics", include_in_schema=False, opt=access("public", errors=(401,)))
async def metrics(request: Request[Any, Any, Any]) -> Response[Any]:
    svc = services(request)
    if not _authorized(request, svc.settings.metrics_token):
        return Response(envelope(401, "metrics token required"), status_code=401,
                        headers={"WWW-Authenticate": "Bearer"}, media_type="application/json")
    if svc.metrics is None:
        return Response("", media_type=CONTENT_TYPE)
    return Response(await svc.metrics(), media_type=CONTENT_TYPE)


ROUTES = [metrics]
