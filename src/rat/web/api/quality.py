"""Quality test endpoints of a pipeline and the quality results of a run."""

from typing import Any

from litestar import Request, Response, delete, get, post, put

from rat.quality.models import (
    QualityResults,
    QualityTest,
    QualityTestList,
    TestCreate,
    TestCreated,
    TestUpdate,
)
from rat.web.access import access
from rat.web.body import read_json
from rat.web.deps import services

P = "/pipelines/{ns:str}/{layer:str}/{name:str}"


@get(P + "/tests", name="api:quality:list", opt=access("R", "pipeline", errors=(400, 404)))
async def list_tests(request: Request[Any, Any, Any], ns: str, layer: str,
                     name: str) -> QualityTestList:
    return await services(request).quality.list_tests(ns, layer, name)


@post(P + "/tests", name="api:quality:create",
      opt=access("W", "pipeline", body=TestCreate, errors=(400, 404, 409)))
async def create_test(request: Request[Any, Any, Any], ns: str, layer: str,
                      name: str) -> Response[TestCreated]:
    body = await read_json(request, TestCreate)
    created = await services(request).quality.create_test(ns, layer, name, body)
    return Response(created, status_code=201)


@post(P + "/tests/run", name="api:quality:run", status_code=200,
      opt=access("W", "pipeline", errors=(400, 404, 409, 504)))
async def run_tests(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                    version: str | None = None) -> QualityResults:
    return await services(request).quality.run_tests(ns, layer, name, version or None)


@put(P + "/tests/{test_name:str}", name="api:quality:update",
     opt=access("W", "pipeline", body=TestUpdate, errors=(400, 404)))
async def update_test(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                      test_name: str) -> QualityTest:
    body = await read_json(request, TestUpdate)
    return await services(request).quality.update_test(ns, layer, name, test_name, body)


@delete(P + "/tests/{test_name:str}", name="api:quality:delete", status_code=204,
        opt=access("W", "pipeline", errors=(400, 404)))
async def delete_test(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                      test_name: str) -> None:
    await services(request).quality.delete_test(ns, layer, name, test_name)


@get("/runs/{run_id:str}/quality", name="api:runs:quality",
     opt=access("R", "run", errors=(400, 404)))
async def run_quality(request: Request[Any, Any, Any], run_id: str) -> QualityResults:
    return await services(request).quality.run_results(run_id)


ROUTES = [list_tests, create_test, run_tests, update_test, delete_test, run_quality]
