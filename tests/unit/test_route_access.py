"""Every route declares its access contract, and the OpenAPI document describes every /api/v1
route with its request body and error responses. Built from the real app's route table, so a
route added later without a declaration fails here."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from rat.app import create_app
from rat.config import load_settings
from rat.web.access import MARKS, PERMISSION, RESOLVERS, access
from rat.web.openapi import enrich
from tests.e2e.pro_support import routes


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    root: Path = tmp_path_factory.mktemp("app")
    before = os.environ.get("RAT_RUNNER_PLUGINS")
    yield create_app(load_settings({"RAT_DATA_DIR": str(root),
                                    "RAT_PLUGINS": "rat-auth,rat-sharing,rat-audit"}))
    if before is None:
        os.environ.pop("RAT_RUNNER_PLUGINS", None)


def test_every_route_declares_access(app: object) -> None:
    missing = [f"{m} {p}" for m, p, decl in routes(app)
               if decl is None and not p.startswith(("/static", "/schema"))]
    assert missing == [], "routes without opt=access(...): " + ", ".join(missing)
    for method, path, decl in routes(app):
        if decl is None:
            continue
        assert decl.mark in MARKS, (method, path)
        if decl.mark in PERMISSION:
            assert decl.resolver in RESOLVERS, (method, path)


def test_guarded_marks_need_a_resolver() -> None:
    with pytest.raises(ValueError, match="needs a resolver"):
        access("R")
    with pytest.raises(ValueError, match="unknown access mark"):
        access("X")  # type: ignore[arg-type]


def test_openapi_describes_every_api_route(app: object) -> None:
    from litestar._openapi.plugin import OpenAPIPlugin

    enrich(app)  # type: ignore[arg-type]
    doc = app.plugins.get(OpenAPIPlugin).provide_openapi_schema()  # type: ignore[attr-defined]
    api_routes = {(m.lower(), p) for m, p, decl in routes(app)
                  if p.startswith("/api/v1/") and decl is not None}
    for method, path in api_routes:
        op = doc["paths"][re.sub(r"\{(\w+):\w+\}", r"{\1}", path)][method]
        assert "x-rat-access" in op, (method, path)
        assert "200" in op["responses"] or "201" in op["responses"] or \
            "204" in op["responses"] or "202" in op["responses"] or \
            "501" in op["responses"], (method, path)
        if op["x-rat-access"] != "public":
            assert op["responses"]["401"]["content"]["application/json"]["schema"] == \
                {"$ref": "#/components/schemas/ErrorEnvelope"}
    create = doc["paths"]["/api/v1/pipelines"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PipelineCreate")
    assert {"400", "401", "403", "404", "409"} <= set(create["responses"])
    assert "namespace" in doc["components"]["schemas"]["PipelineCreate"]["properties"]
    assert "ErrorEnvelope" in doc["components"]["schemas"]
