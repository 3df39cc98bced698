from decimal import Decimal

import msgspec

from rat.web.grid import exact_decimals
from rat.web.templating import _cell

RAW = b'{"rows": [{"amount": 10.50, "zero": 0.0000, "ratio": 0.5, "nested": {"p": 1.10}}]}'


def test_decimal_cells_keep_their_scale() -> None:
    rows = msgspec.json.decode(RAW)["rows"]
    columns = [("amount", "DECIMAL(10,2)"), ("zero", "DECIMAL(12,4)"), ("ratio", "DOUBLE"),
               ("nested", "STRUCT(p DECIMAL(5,2))")]
    exact_decimals(RAW, columns, rows)
    assert rows[0]["amount"] == Decimal("10.50")
    assert isinstance(rows[0]["ratio"], float)
    assert [_cell(rows[0][k]) for k, _ in columns] == ["10.50", "0.0000", "0.5", '{"p":1.10}']
    assert _cell(Decimal("0E-4")) == "0.0000"
