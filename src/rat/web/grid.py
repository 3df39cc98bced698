"""Result grids keep DECIMAL values exact.

The engine sends DECIMAL as exact JSON numbers (`10.50`); a plain decode turns them into floats
(`10.5`) and the scale is lost before the template sees them. The rows are decoded a second time
with `float_hook=Decimal`, and only the cells of columns whose type mentions DECIMAL (nested
types included) take those exact values: DOUBLE columns stay floats.
"""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec


class _Rows(msgspec.Struct):
    rows: list[dict[str, Any]] = msgspec.field(default_factory=list)


_EXACT = msgspec.json.Decoder(_Rows, float_hook=Decimal)


def exact_decimals(raw: bytes, columns: Iterable[tuple[str, str]],
                   rows: list[dict[str, Any]]) -> None:
    """Replace, in place, the DECIMAL cells of `rows` (decoded from `raw`) with exact values."""
    names = [name for name, kind in columns if "DECIMAL" in kind.upper()]
    if not names or not rows:
        return
    for row, exact in zip(rows, _EXACT.decode(raw).rows, strict=False):
        for name in names:
            if name in exact:
                row[name] = exact[name]
