"""docs/configuration.md documents every setting RAT accepts."""

from __future__ import annotations

from pathlib import Path

import msgspec

from rat.config import Settings, env_name

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_in_the_configuration_reference() -> None:
    text = DOC.read_text()
    missing = [env_name(f.name) for f in msgspec.structs.fields(Settings)
               if f.name != "plugin_config" and f"`{env_name(f.name)}`" not in text]
    assert not missing, f"document these in docs/configuration.md: {missing}"
