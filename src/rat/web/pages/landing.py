"""Landing zones: the list with a create dialog, and the zone page.

The zone page has drag-and-drop upload, files (preview, download, delete), samples, processed
files, metadata, lifecycle, the triggers watching the zone, and delete. Uploads from the browser
go to the API with XHR (for the progress bar); the multipart form posts here without JavaScript.
"""

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile

from rat.core.errors import Invalid, RatError, TooLarge
from rat.landing.models import LandingZone, LifecycleUpdate, Upload, ZoneCreate, ZoneUpdate
from rat.plugins.protocols import ReadScope
from rat.web.access import access, read_scope, user_id
from rat.web.deps import Services, int_param, services
from rat.web.pages.forms import form_data, go
from rat.web.templating import is_fragment, render

Z = "/landing/{ns:str}/{name:str}"
PAGE = 50
_NEW_ZONE = {"namespace": "default", "name": "", "description": "", "expected_schema": ""}


def zone_url(zone: LandingZone) -> str:
    return f"/landing/{zone.namespace}/{zone.name}"


@get("/landing", name="pages:landing", include_in_schema=False,
     opt=access("filtered"))
async def landing_page(request: Request[Any, Any, Any], search: str | None = None,
                       new: str | None = None, offset: str | None = None) -> Response[str]:
    return await _list(request, search or "", int_param(offset, "offset", 0),
                       block="zones", show_form=new == "1")


async def _list(request: Request[Any, Any, Any], search: str, start: int,
                **ctx: Any) -> Response[str]:
    page = await services(request).landing.list(search=search or None, limit=PAGE, offset=start,
                                                scope=await read_scope(request))
    ctx = {"form": _NEW_ZONE, "error": None, "show_form": False, **ctx}
    return render(request, "landing/index.html", page=page, search=search, limit=PAGE,
                  offset=start, **ctx)


@post("/landing", name="pages:landing:create", include_in_schema=False,
     opt=access("W", "body:namespace"))
async def create_zone(request: Request[Any, Any, Any]) -> Response[Any]:
    data = {**_NEW_ZONE, **await form_data(request)}
    try:
        zone = await services(request).landing.create(ZoneCreate(
            namespace=data["namespace"], name=data["name"], description=data["description"],
            expected_schema=data["expected_schema"]), owner=user_id(request))
    except RatError as exc:
        return await _list(request, "", 0, block="create_form", status=422, form=data,
                           error=exc.message, show_form=True)
    return go(request, zone_url(zone))


async def zone_context(svc: Services, zone: LandingZone,
                       scope: ReadScope | None) -> dict[str, Any]:
    files = await svc.landing.files(zone.namespace, zone.name, limit=200)
    samples = await svc.landing.samples(zone.namespace, zone.name)
    processed = await svc.landing.processed(zone.namespace, zone.name, limit=50)
    watchers = await svc.triggers.watching(zone.namespace, zone.name, scope=scope)
    return {"zone": zone, "files": files, "samples": samples, "processed": processed,
            "watchers": watchers,
            "zbase": zone_url(zone), "oob": False,
            "api": f"/api/v1/landing-zones/{zone.namespace}/{zone.name}",
            "meta_error": None, "meta_saved": False, "lifecycle_error": None,
            "lifecycle_saved": False, "upload_error": None, "delete_error": None,
            "meta_form": {"description": zone.description, "owner": zone.owner or "",
                          "expected_schema": zone.expected_schema},
            "lifecycle_form": {"days": "" if zone.processed_max_age_days is None else
                               str(zone.processed_max_age_days),
                               "auto_purge": "on" if zone.auto_purge else ""}}


async def _zone(request: Request[Any, Any, Any], ns: str, name: str, *,
                block: str | tuple[str, ...] | None = None, status: int = 200,
                **override: Any) -> Response[str]:
    svc = services(request)
    zone = await svc.landing.get(ns, name)
    ctx = {**await zone_context(svc, zone, await read_scope(request)),
           "oob": is_fragment(request), **override}
    return render(request, "landing/zone.html", block=block, status=status, **ctx)


@get(Z, name="pages:zone", include_in_schema=False,
     opt=access("R", "zone"))
async def zone_page(request: Request[Any, Any, Any], ns: str, name: str) -> Response[str]:
    """The zone; `rat:files-changed` (after an upload) re-renders the file lists only."""
    return await _zone(request, ns, name, block=("zone_files", "oob_samples"))


@post(Z + "/meta", name="pages:zone:meta", include_in_schema=False,
     opt=access("W", "zone"))
async def save_meta(request: Request[Any, Any, Any], ns: str, name: str) -> Response[Any]:
    form = await form_data(request)
    body = ZoneUpdate(description=form.get("description", ""),
                      expected_schema=form.get("expected_schema", ""))
    try:
        zone = await services(request).landing.update(ns, name, body)
    except RatError as exc:
        return await _zone(request, ns, name, block="zone_meta", status=422,
                           meta_error=exc.message, meta_form=form)
    if not is_fragment(request):
        return go(request, zone_url(zone))
    return await _zone(request, ns, name, block="zone_meta", meta_saved=True)


@post(Z + "/lifecycle", name="pages:zone:lifecycle", include_in_schema=False,
     opt=access("W", "zone"))
async def save_lifecycle(request: Request[Any, Any, Any], ns: str, name: str) -> Response[Any]:
    form = await form_data(request)
    days = form.get("days", "").strip()
    try:
        body = LifecycleUpdate(processed_max_age_days=int_param(days, "days", 0) if days else None,
                               auto_purge=form.get("auto_purge") == "on")
        await services(request).landing.set_lifecycle(ns, name, body)
    except RatError as exc:
        return await _zone(request, ns, name, block="zone_lifecycle", status=422,
                           lifecycle_error=exc.message, lifecycle_form={
                               "days": days, "auto_purge": form.get("auto_purge", "")})
    if not is_fragment(request):
        return go(request, f"/landing/{ns}/{name}")
    return await _zone(request, ns, name, block="zone_lifecycle", lifecycle_saved=True)


async def _spool(request: Request[Any, Any, Any], svc: Services) -> Upload:
    """The `file` of a plain multipart form post (no JavaScript) in a temp file."""
    part = (await request.form()).get("file")
    if not isinstance(part, UploadFile) or not part.filename:
        raise Invalid("choose a file to upload")
    tmp = svc.settings.data_path / "tmp" / "uploads"
    tmp.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmp, delete=False) as out:
        await part.seek(0)
        await asyncio.to_thread(shutil.copyfileobj, part.file, out)
        size = out.tell()
    if size > svc.settings.upload_max_bytes:
        await asyncio.to_thread(Path(out.name).unlink, missing_ok=True)
        raise TooLarge(f"upload is larger than {svc.settings.upload_max_bytes} bytes")
    return Upload(path=Path(out.name), filename=part.filename, size=size,
                  content_type=part.content_type or "application/octet-stream")


@post(Z + "/files", name="pages:zone:upload", include_in_schema=False,
     opt=access("W", "zone"))
async def upload_file(request: Request[Any, Any, Any], ns: str, name: str) -> Response[Any]:
    return await _upload(request, ns, name, sample=False)


@post(Z + "/samples", name="pages:zone:upload-sample", include_in_schema=False,
     opt=access("W", "zone"))
async def upload_sample(request: Request[Any, Any, Any], ns: str, name: str) -> Response[Any]:
    return await _upload(request, ns, name, sample=True)


async def _upload(request: Request[Any, Any, Any], ns: str, name: str, *,
                  sample: bool) -> Response[Any]:
    svc = services(request)
    zone = await svc.landing.get(ns, name)
    try:
        upload = await _spool(request, svc)
        try:
            await (svc.landing.add_sample(zone, upload) if sample else
                   svc.landing.add_file(zone, upload, uploaded_by=user_id(request)))
        finally:
            upload.path.unlink(missing_ok=True)
    except RatError as exc:
        return await _zone(request, ns, name, block="zone_files", status=422,
                           upload_error=exc.message)
    return go(request, zone_url(zone))


@post(Z + "/files/{file_id:str}/delete", name="pages:zone:delete-file", include_in_schema=False,
     opt=access("W", "zone"))
async def delete_file(request: Request[Any, Any, Any], ns: str, name: str,
                      file_id: str) -> Response[Any]:
    await services(request).landing.delete_file(ns, name, file_id)
    if not is_fragment(request):
        return go(request, f"/landing/{ns}/{name}")
    return await _zone(request, ns, name, block=("zone_files", "oob_samples"))


@post(Z + "/samples/{filename:str}/delete", name="pages:zone:delete-sample",
      include_in_schema=False,
     opt=access("W", "zone"))
async def delete_sample(request: Request[Any, Any, Any], ns: str, name: str,
                        filename: str) -> Response[Any]:
    await services(request).landing.delete_sample(ns, name, filename)
    if not is_fragment(request):
        return go(request, f"/landing/{ns}/{name}")
    return await _zone(request, ns, name, block=("zone_files", "oob_samples"))


@get(Z + "/files/{file_id:str}/preview", name="pages:zone:preview", include_in_schema=False,
     opt=access("R", "zone"))
async def preview_file(request: Request[Any, Any, Any], ns: str, name: str,
                       file_id: str) -> Response[str]:
    svc = services(request)
    row = await svc.landing.file(ns, name, file_id)
    return await _preview(request, ns, name, row.filename,
                          svc.landing.preview_file(ns, name, file_id, 100))


@get(Z + "/samples/{filename:str}/preview", name="pages:zone:preview-sample",
     include_in_schema=False,
     opt=access("R", "zone"))
async def preview_sample(request: Request[Any, Any, Any], ns: str, name: str,
                         filename: str) -> Response[str]:
    return await _preview(request, ns, name, filename,
                          services(request).landing.preview_sample(ns, name, filename, 100))


async def _preview(request: Request[Any, Any, Any], ns: str, name: str, filename: str,
                   pending: Any) -> Response[str]:
    """The first rows of a file; a format DuckDB cannot read shows as a message, not an error."""
    try:
        result, error = await pending, None
    except RatError as exc:
        result, error = None, exc.message
    return render(request, "landing/preview.html", block="file_preview", ns=ns, zone_name=name,
                  filename=filename, result=result, error=error, grid_rows=100)


@post(Z + "/delete", name="pages:zone:delete", include_in_schema=False,
     opt=access("A", "zone"))
async def delete_zone(request: Request[Any, Any, Any], ns: str, name: str) -> Response[Any]:
    form = await form_data(request)
    if form.get("confirm", "") != name:
        return await _zone(request, ns, name, block="zone_delete", status=422,
                           delete_error=f"type the zone name ({name}) to confirm")
    await services(request).landing.delete(ns, name)
    return go(request, "/landing")


ROUTES = [landing_page, create_zone, zone_page, save_meta, save_lifecycle, upload_file,
          upload_sample, delete_file, delete_sample, preview_file, preview_sample, delete_zone]
