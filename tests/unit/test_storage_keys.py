"""Storage keys are validated before any I/O: no traversal in any encoding."""

from __future__ import annotations

import pytest

from rat.core.errors import Invalid
from rat.storage.keys import validate_filename, validate_key


@pytest.mark.parametrize("key", [
    "", "/etc/passwd", "a/../b", "a/./b", "a//b", "a/b/", "a\\b", "a/\x00b", "a/\x07b",
    "a/%2e%2e/b", "a/%252e%252e/b", "%2fetc/passwd", "a/" + "x" * 256, "x" * 1025,
])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(Invalid):
        validate_key(key)


@pytest.mark.parametrize("key", ["default/pipelines/silver/orders/pipeline.sql",
                                 "ns-1/landing/zone/20261122_100000_file name.csv"])
def test_safe_keys_pass(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("name", ["", "../x", "a/b", "a\\b", ".hidden", "x\x00", "x" * 256])
def test_bad_filenames(name: str) -> None:
    with pytest.raises(Invalid):
        validate_filename(name)


def test_good_filename() -> None:
    assert validate_filename("orders 2026-11.csv") == "orders 2026-11.csv"
