"""Form decoding for pages: urlencoded bodies into msgspec Structs, errors kept for re-rendering."""

from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.response import Redirect

from rat.core.errors import Invalid
from rat.web.templating import is_fragment

T = TypeVar("T")


async def form_data(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "_csrf_token"}


def to_struct(data: dict[str, str], model: type[T]) -> T:
    fields = set(getattr(model, "__struct_fields__", ()))
    try:
        return msgspec.convert({k: v for k, v in data.items() if k in fields}, model,
                               strict=False)
    except msgspec.ValidationError as exc:
        raise Invalid(str(exc)) from None


def go(request: Request[Any, Any, Any], url: str) -> Response[Any]:
    """Navigate after a successful form post: HX-Redirect for htmx, 303 for a plain form."""
    if is_fragment(request):
        return Response(b"", status_code=200, headers={"HX-Redirect": url})
    return Redirect(url, status_code=303)
