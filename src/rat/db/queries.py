"""Load sqlc-style named queries shipped next to each repository."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal, LiteralString, cast

Returns = Literal["one", "many", "exec", "execrows", "val"]
_HEADER = re.compile(
    r"^-- name: (?P<name>[a-z][a-z0-9_]*) :(?P<returns>one|many|exec|execrows|val)\s*$", re.M)


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: LiteralString
    returns: Returns


def load_queries(package: str, filename: str = "queries.sql") -> dict[str, Query]:
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    heads = list(_HEADER.finditer(text))
    out: dict[str, Query] = {}
    for head, nxt in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end(): nxt.start() if nxt else len(text)].strip()
        name = head["name"]
        if name in out:
            raise ValueError(f"{package}/{filename}: duplicate query {name!r}")
        out[name] = Query(name, body, cast(Returns, head["returns"]))
    return out
