"""Files endpoints: pipeline code and zone samples as storage paths."""

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post, put

from rat.core.errors import Invalid
from rat.files.service import FileContent, FileList, FileUploaded, FileWritten
from rat.web.access import access, read_scope, require, resolve_path
from rat.web.body import read_json
from rat.web.deps import services
from rat.web.uploads import receive_multipart


class FileBody(msgspec.Struct):
    content: str


def _path(raw: str) -> str:
    return raw.lstrip("/") if raw.startswith("/") else raw


@get("/files", name="api:files:list", opt=access("filtered", errors=(400, 404)))
async def list_files(request: Request[Any, Any, Any], prefix: str | None = None,
                     exclude: str | None = None) -> FileList:
    if not prefix:
        raise Invalid("prefix is required")
    return await services(request).files.list(prefix, exclude, await read_scope(request))


@get("/files/{path:path}", name="api:files:read",
     opt=access("R", "file", errors=(400, 404, 415)))
async def read_file(request: Request[Any, Any, Any], path: str) -> FileContent:
    return await services(request).files.read(_path(path))


@put("/files/{path:path}", name="api:files:write",
     opt=access("W", "file", body=FileBody, errors=(400, 404, 413)))
async def write_file(request: Request[Any, Any, Any], path: str) -> FileWritten:
    body = await read_json(request, FileBody)
    return await services(request).files.write(_path(path), body.content)


@delete("/files/{path:path}", name="api:files:delete", status_code=204,
        opt=access("W", "file", errors=(400, 404)))
async def delete_file(request: Request[Any, Any, Any], path: str) -> None:
    await services(request).files.delete(_path(path))


@post("/files/upload", name="api:files:upload",
      opt=access("W", "deferred", errors=(400, 404, 413)))
async def upload_file(request: Request[Any, Any, Any]) -> Response[FileUploaded]:
    svc = services(request)
    tmp = svc.settings.data_path / "tmp" / "uploads"
    fields, spooled = await receive_multipart(request, tmp, svc.settings.upload_max_bytes)
    try:
        path = fields.get("path", "")
        if not path:
            raise Invalid("multipart field 'path' (the destination) is required")
        await require(request, await resolve_path(request, path), "write")
        result = await svc.files.upload(path, spooled.path, spooled.size, spooled.sha256)
    finally:
        spooled.path.unlink(missing_ok=True)
    return Response(result, status_code=201)


ROUTES = [list_files, read_file, write_file, delete_file, upload_file]
