"""Personas stored in the database (imported and custom ones)."""

from __future__ import annotations

import time
from typing import Any

from tortoise.expressions import Q

from personae.storage.models import Persona

IDS_TTL_SECONDS = 5.0


class PersonaStore:
    """Raw card documents keyed by persona id, with their owner.

    ``owner_id`` None means a system persona (imported by an operator)."""

    def __init__(self) -> None:
        self._ids: frozenset[str] | None = None
        self._ids_read_at = 0.0
        self._visible: dict[int | None, tuple[float, list[tuple[dict[str, Any], int | None, bool]]]]
        self._visible = {}

    async def stored_ids(self) -> frozenset[str]:
        """The ids of every stored persona, re-read at most every few seconds (and
        at once after a change made through this store). The runtime uses it only to
        skip a lookup for built-in personas no stored card overrides."""
        now = time.monotonic()
        if self._ids is None or now - self._ids_read_at > IDS_TTL_SECONDS:
            rows = await Persona.all().values("id")
            self._ids = frozenset(str(row["id"]) for row in rows)
            self._ids_read_at = now
        return self._ids

    async def save(
        self, persona_id: str, card: dict[str, Any], *, owner_id: int | None, shared: bool = False
    ) -> None:
        await Persona.update_or_create(
            id=persona_id, defaults={"card": card, "owner_id": owner_id, "shared": shared}
        )
        self._changed()

    def _changed(self) -> None:
        self._ids = None
        self._visible.clear()

    async def get(self, persona_id: str) -> tuple[dict[str, Any], int | None, bool] | None:
        row = await Persona.get_or_none(id=persona_id)
        if row is None:
            return None
        return row.card, row.owner_id, row.shared  # type: ignore[attr-defined]

    async def visible(self, viewer: int | None) -> list[tuple[dict[str, Any], int | None, bool]]:
        """System personas plus the viewer's own and shared ones (re-read at most
        every few seconds, and at once after a change made through this store)."""
        cached = self._visible.get(viewer)
        if cached is not None and time.monotonic() - cached[0] <= IDS_TTL_SECONDS:
            return cached[1]
        condition = Q(owner_id=None) | Q(shared=True)
        if viewer is not None:
            condition |= Q(owner_id=viewer)
        rows = await Persona.filter(condition).order_by("id")
        found = [(row.card, row.owner_id, row.shared) for row in rows]  # type: ignore[attr-defined]
        if len(self._visible) > 1024:
            self._visible.clear()
        self._visible[viewer] = (time.monotonic(), found)
        return found

    async def delete(self, persona_id: str, *, owner_id: int | None) -> bool:
        self._changed()
        return await Persona.filter(id=persona_id, owner_id=owner_id).delete() > 0
