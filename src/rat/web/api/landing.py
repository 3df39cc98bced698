"""Landing zone endpoints: zones, streamed uploads, files, samples, processed files, lifecycle."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, delete, get, post, put
from litestar.response import Stream

from rat.landing.models import (
    FilePage,
    FilePreview,
    LandingFile,
    LandingZone,
    Lifecycle,
    LifecycleUpdate,
    ProcessedPage,
    SampleList,
    SampleUploaded,
    Upload,
    ZoneCreate,
    ZonePage,
    ZoneUpdate,
)
from rat.landing.service import PREVIEW_DEFAULT
from rat.web.access import access, read_scope, user_id
from rat.web.body import read_json
from rat.web.deps import Services, bool_param, int_param, services
from rat.web.uploads import receive_multipart

Z = "/landing-zones/{ns:str}/{name:str}"


@asynccontextmanager
async def spooled(request: Request[Any, Any, Any], svc: Services) -> AsyncIterator[Upload]:
    """The multipart `file` part in a temp file, removed afterwards whatever happens."""
    tmp = svc.settings.data_path / "tmp" / "uploads"
    _fields, part = await receive_multipart(request, tmp, svc.settings.upload_max_bytes,
                                            hash_content=False)
    try:
        yield Upload(path=part.path, filename=part.filename, size=part.size,
                     content_type=part.content_type)
    finally:
        part.path.unlink(missing_ok=True)


@get("/landing-zones", name="api:landing:list", opt=access("filtered", errors=(400,)))
async def list_zones(request: Request[Any, Any, Any], namespace: str | None = None,
                     search: str | None = None, limit: str | None = None,
                     offset: str | None = None) -> ZonePage:
    return await services(request).landing.list(
        namespace=namespace or None, search=search, limit=int_param(limit, "limit", 50),
        offset=int_param(offset, "offset", 0), scope=await read_scope(request))


@post("/landing-zones", name="api:landing:create",
      opt=access("W", "body:namespace", body=ZoneCreate, errors=(400, 404, 409)))
async def create_zone(request: Request[Any, Any, Any]) -> Response[LandingZone]:
    body = await read_json(request, ZoneCreate)
    created = await services(request).landing.create(body, owner=user_id(request))
    return Response(created, status_code=201)


@get(Z, name="api:landing:get", opt=access("R", "zone", errors=(400, 404)))
async def get_zone(request: Request[Any, Any, Any], ns: str, name: str) -> LandingZone:
    return await services(request).landing.get(ns, name)


@put(Z, name="api:landing:update",
     opt=access("W", "zone", escalate=("owner",), body=ZoneUpdate, errors=(400, 404)))
async def update_zone(request: Request[Any, Any, Any], ns: str, name: str) -> LandingZone:
    body = await read_json(request, ZoneUpdate)
    return await services(request).landing.update(ns, name, body)


@delete(Z, name="api:landing:delete", status_code=204,
        opt=access("A", "zone", errors=(400, 404)))
async def delete_zone(request: Request[Any, Any, Any], ns: str, name: str) -> None:
    await services(request).landing.delete(ns, name)


@get(Z + "/files", name="api:landing:files", opt=access("R", "zone", errors=(400, 404)))
async def list_files(request: Request[Any, Any, Any], ns: str, name: str,
                     include_processed: str | None = None, limit: str | None = None,
                     offset: str | None = None) -> FilePage:
    return await services(request).landing.files(
        ns, name, include_processed=bool_param(include_processed, "include_processed"),
        limit=int_param(limit, "limit", 50), offset=int_param(offset, "offset", 0))


@post(Z + "/files", name="api:landing:upload",
      opt=access("W", "zone", errors=(400, 404, 413, 415)))
async def upload_file(request: Request[Any, Any, Any], ns: str,
                      name: str) -> Response[LandingFile]:
    svc = services(request)
    zone = await svc.landing.get(ns, name)  # 404 before a byte of the body is read
    async with spooled(request, svc) as upload:
        row = await svc.landing.add_file(zone, upload, uploaded_by=user_id(request))
    return Response(row, status_code=201)


@get(Z + "/files/{file_id:str}", name="api:landing:file",
     opt=access("R", "zone", errors=(400, 404)))
async def get_file(request: Request[Any, Any, Any], ns: str, name: str,
                   file_id: str) -> LandingFile:
    return await services(request).landing.file(ns, name, file_id)


@delete(Z + "/files/{file_id:str}", name="api:landing:delete-file", status_code=204,
        opt=access("W", "zone", errors=(400, 404)))
async def delete_file(request: Request[Any, Any, Any], ns: str, name: str,
                      file_id: str) -> None:
    await services(request).landing.delete_file(ns, name, file_id)


@get(Z + "/files/{file_id:str}/download", name="api:landing:download",
     opt=access("R", "zone", errors=(400, 404)))
async def download_file(request: Request[Any, Any, Any], ns: str, name: str,
                        file_id: str) -> Stream:
    row, chunks = await services(request).landing.download(ns, name, file_id)
    disposition = f"attachment; filename*=UTF-8''{quote(row.filename, safe='')}"
    return Stream(chunks, media_type="application/octet-stream",
                  headers={"Content-Disposition": disposition,
                           "X-Content-Type-Options": "nosniff"})


@get(Z + "/files/{file_id:str}/preview", name="api:landing:preview",
     opt=access("R", "zone", errors=(400, 404, 415)))
async def preview_file(request: Request[Any, Any, Any], ns: str, name: str, file_id: str,
                       limit: str | None = None) -> FilePreview:
    return await services(request).landing.preview_file(
        ns, name, file_id, int_param(limit, "limit", PREVIEW_DEFAULT))


@get(Z + "/samples", name="api:landing:samples", opt=access("R", "zone", errors=(400, 404)))
async def list_samples(request: Request[Any, Any, Any], ns: str, name: str) -> SampleList:
    return await services(request).landing.samples(ns, name)


@post(Z + "/samples", name="api:landing:upload-sample",
      opt=access("W", "zone", errors=(400, 404, 413, 415)))
async def upload_sample(request: Request[Any, Any, Any], ns: str,
                        name: str) -> Response[SampleUploaded]:
    svc = services(request)
    zone = await svc.landing.get(ns, name)
    async with spooled(request, svc) as upload:
        result = await svc.landing.add_sample(zone, upload)
    return Response(result, status_code=201)


@delete(Z + "/samples/{filename:str}", name="api:landing:delete-sample", status_code=204,
        opt=access("W", "zone", errors=(400, 404)))
async def delete_sample(request: Request[Any, Any, Any], ns: str, name: str,
                        filename: str) -> None:
    await services(request).landing.delete_sample(ns, name, filename)


@get(Z + "/samples/{filename:str}/preview", name="api:landing:preview-sample",
     opt=access("R", "zone", errors=(400, 404, 415)))
async def preview_sample(request: Request[Any, Any, Any], ns: str, name: str, filename: str,
                         limit: str | None = None) -> FilePreview:
    return await services(request).landing.preview_sample(
        ns, name, filename, int_param(limit, "limit", PREVIEW_DEFAULT))


@get(Z + "/processed", name="api:landing:processed",
     opt=access("R", "zone", errors=(400, 404)))
async def list_processed(request: Request[Any, Any, Any], ns: str, name: str,
                         run_id: str | None = None, limit: str | None = None,
                         offset: str | None = None) -> ProcessedPage:
    return await services(request).landing.processed(
        ns, name, run_id=run_id or None, limit=int_param(limit, "limit", 50),
        offset=int_param(offset, "offset", 0))


@get(Z + "/lifecycle", name="api:landing:lifecycle",
     opt=access("R", "zone", errors=(400, 404)))
async def get_lifecycle(request: Request[Any, Any, Any], ns: str, name: str) -> Lifecycle:
    return await services(request).landing.lifecycle(ns, name)


@put(Z + "/lifecycle", name="api:landing:set-lifecycle", status_code=204,
     opt=access("W", "zone", body=LifecycleUpdate, errors=(400, 404)))
async def set_lifecycle(request: Request[Any, Any, Any], ns: str, name: str) -> None:
    body = await read_json(request, LifecycleUpdate)
    await services(request).landing.set_lifecycle(ns, name, body)


ROUTES = [list_zones, create_zone, get_zone, update_zone, delete_zone, list_files, upload_file,
          get_file, delete_file, download_file, preview_file, list_samples, upload_sample,
          delete_sample, preview_sample, list_processed, get_lifecycle, set_lifecycle]
