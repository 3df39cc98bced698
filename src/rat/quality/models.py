"""Quality shapes as the API returns them (QualityTest, QualityResult) and their inputs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec


class QualityTest(msgspec.Struct, kw_only=True):
    name: str
    sql: str
    severity: str
    description: str
    published: bool
    tags: list[str]
    remediation: str
    kind: str
    path: str | None


class QualityTestList(msgspec.Struct, kw_only=True):
    tests: list[QualityTest]
    total: int


class QualityResult(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    run_id: uuid.UUID | None
    name: str
    test_name: str
    test_file: str | None
    kind: str
    severity: str
    status: str
    value: int
    expected: int
    row_count: int
    message: str
    duration_ms: int
    description: str
    compiled_sql: str
    sample_rows: list[dict[str, Any]]
    tags: list[str]
    remediation: str
    created_at: datetime


class QualityResults(msgspec.Struct, kw_only=True):
    results: list[QualityResult]
    passed: int
    failed: int
    warned: int
    total: int


class TestCreate(msgspec.Struct, kw_only=True):
    name: str
    sql: str
    severity: str = "error"
    description: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    remediation: str = ""


class TestUpdate(msgspec.Struct, kw_only=True):
    sql: str | None = None
    severity: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    remediation: str | None = None


class TestCreated(msgspec.Struct, kw_only=True):
    name: str
    severity: str
    path: str


def result_from_row(row: dict[str, Any]) -> QualityResult:
    return QualityResult(
        id=row["id"], run_id=row["run_id"], name=row["test_name"], test_name=row["test_name"],
        test_file=row["test_file"], kind=row["kind"], severity=row["severity"],
        status=row["status"], value=row["row_count"], expected=0, row_count=row["row_count"],
        message=row["message"], duration_ms=row["duration_ms"], description=row["description"],
        compiled_sql=row["compiled_sql"], sample_rows=row["sample_rows"] or [],
        tags=row["tags"] or [], remediation=row["remediation"], created_at=row["created_at"])


def results_page(results: list[QualityResult]) -> QualityResults:
    bad = [r for r in results if r.status != "pass"]
    return QualityResults(results=results, passed=len(results) - len(bad),
                          failed=sum(1 for r in bad if r.severity == "error"),
                          warned=sum(1 for r in bad if r.severity == "warn"), total=len(results))
