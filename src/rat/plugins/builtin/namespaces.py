"""rat-namespaces: more than one namespace (product §15).

Turns on the `namespaces` capability: `POST /namespaces` and `DELETE /namespaces/{name}` answer
501 without it (api.md §13), and the UI shows namespace management. The creator of a namespace
owns it (`namespaces.created_by`), which rat-sharing treats as admin on everything inside.
"""

from __future__ import annotations

from typing import Any


class NamespacesPlugin:
    name = "rat-namespaces"
    version = "1"
    slots = ("feature",)
    config_type = None

    def activate(self, ctx: Any) -> None:
        ctx.add_capability("namespaces")


plugin = NamespacesPlugin
