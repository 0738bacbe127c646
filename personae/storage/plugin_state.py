"""A scoped key-value store for plugins that keep a little state per
(persona, user) and do not want tables of their own."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError

from personae.core.types import Scope
from personae.storage.models import PluginState


def _wrap(value: Any) -> dict[str, Any]:
    # Stored as {"v": value}: Tortoise reads a bare string given to a JSON field in
    # an UPDATE as already-encoded JSON, so every value goes in inside an object.
    return {"v": value}


def _unwrap(stored: Any) -> Any:
    return stored.get("v") if isinstance(stored, dict) else stored


class PluginStateStore:
    """``await runtime.plugin_state.set(scope, "mood", "level", 3)``; values are any
    JSON-able value (strings, numbers, lists, objects, None)."""

    async def get(self, scope: Scope, plugin: str, key: str, default: Any = None) -> Any:
        row = await PluginState.get_or_none(
            persona_id=scope.persona_id, user_id=scope.user_id, plugin=plugin, key=key
        )
        return default if row is None else _unwrap(row.value)

    async def set(self, scope: Scope, plugin: str, key: str, value: Any) -> None:
        where = {
            "persona_id": scope.persona_id,
            "user_id": scope.user_id,
            "plugin": plugin,
            "key": key,
        }
        for _ in range(3):
            if await PluginState.filter(**where).update(value=_wrap(value)):
                return
            try:
                await PluginState.create(
                    persona_id=scope.persona_id,
                    user_id=scope.user_id,
                    plugin=plugin,
                    key=key,
                    value=_wrap(value),
                )
                return
            except IntegrityError:
                continue  # created concurrently: update it on the next pass
        raise RuntimeError(f"could not store {plugin}.{key}")

    async def delete(self, scope: Scope, plugin: str, key: str) -> bool:
        return (
            await PluginState.filter(
                persona_id=scope.persona_id, user_id=scope.user_id, plugin=plugin, key=key
            ).delete()
            > 0
        )

    async def items(self, scope: Scope, plugin: str) -> dict[str, Any]:
        rows = await PluginState.filter(
            persona_id=scope.persona_id, user_id=scope.user_id, plugin=plugin
        ).order_by("key")
        return {row.key: _unwrap(row.value) for row in rows}

    async def forget(self, user_id: int, persona_id: str | None, plugin: str) -> int:
        query = PluginState.filter(user_id=user_id, plugin=plugin)
        if persona_id is not None:
            query = query.filter(persona_id=persona_id)
        return await query.delete()

    async def export(
        self, user_id: int, persona_id: str | None, plugin: str
    ) -> list[dict[str, Any]]:
        query = PluginState.filter(user_id=user_id, plugin=plugin)
        if persona_id is not None:
            query = query.filter(persona_id=persona_id)
        rows = await query.order_by("persona_id", "key")
        return [{"persona_id": r.persona_id, "key": r.key, "value": _unwrap(r.value)} for r in rows]
