"""Liveness and readiness probes."""

from typing import Any

from litestar import Request, Response, get

from rat import __version__
from rat.web.access import access
from rat.web.deps import services


@get(["/health", "/health/live"], name="health:live", sync_to_thread=False,
     opt=access("public"))
def live() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@get("/health/ready", name="health:ready", opt=access("public", errors=(503,)))
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    checks = await services(request).readiness()
    ok = all(v["status"] == "ok" for k, v in checks.items() if k not in ("leader", "sandbox"))
    return Response({"status": "ready" if ok else "not_ready", "checks": checks},
                    status_code=200 if ok else 503)


ROUTES = [live, ready]
