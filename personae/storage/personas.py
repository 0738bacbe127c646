"""Personas stored in the database (imported and custom ones)."""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q

from personae.core.cache import RefreshingCache
from personae.storage.models import Persona

IDS_TTL_SECONDS = 30.0

StoredCard = tuple[dict[str, Any], int | None, bool]


class PersonaStore:
    """Raw card documents keyed by persona id, with their owner.

    ``owner_id`` None means a system persona (imported by an operator)."""

    def __init__(self) -> None:
        self._ids: RefreshingCache[None, frozenset[str]] = RefreshingCache(
            self._read_ids, ttl=IDS_TTL_SECONDS
        )
        self._visible: RefreshingCache[int | None, list[StoredCard]] = RefreshingCache(
            self._read_visible, ttl=IDS_TTL_SECONDS
        )

    async def stored_ids(self) -> frozenset[str]:
        """The ids of every stored persona, at most a few seconds old (and current
        after a change made through this store). The runtime uses it only to skip a
        lookup for built-in personas no stored card overrides."""
        return await self._ids.get(None)

    async def _read_ids(self, _: None) -> frozenset[str]:
        rows = await Persona.all().values("id")
        return frozenset(str(row["id"]) for row in rows)

    async def save(
        self, persona_id: str, card: dict[str, Any], *, owner_id: int | None, shared: bool = False
    ) -> None:
        await Persona.update_or_create(
            id=persona_id, defaults={"card": card, "owner_id": owner_id, "shared": shared}
        )
        self._changed()

    def _changed(self) -> None:
        self._ids.invalidate()
        self._visible.invalidate()

    async def get(self, persona_id: str) -> StoredCard | None:
        row = await Persona.get_or_none(id=persona_id)
        if row is None:
            return None
        return row.card, row.owner_id, row.shared  # type: ignore[attr-defined]

    async def visible(self, viewer: int | None) -> list[StoredCard]:
        """System personas plus the viewer's own and shared ones (at most a few
        seconds old, and current after a change made through this store)."""
        return await self._visible.get(viewer)

    async def _read_visible(self, viewer: int | None) -> list[StoredCard]:
        condition = Q(owner_id=None) | Q(shared=True)
        if viewer is not None:
            condition |= Q(owner_id=viewer)
        rows = await Persona.filter(condition).order_by("id")
        return [(row.card, row.owner_id, row.shared) for row in rows]  # type: ignore[attr-defined]

    async def delete(self, persona_id: str, *, owner_id: int | None) -> bool:
        deleted = await Persona.filter(id=persona_id, owner_id=owner_id).delete() > 0
        self._changed()
        return deleted
