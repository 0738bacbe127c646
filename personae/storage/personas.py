"""Personas stored in the database (imported and custom ones)."""

from __future__ import annotations

from typing import Any

from personae.core.cache import RefreshingCache
from personae.storage import connections
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
        # Quick reads (on SQLite, on the event loop's thread when nothing has to
        # wait): when the cached value has expired, the turns of a burst all wait
        # for this read, and its result must not queue behind their work.
        rows = await connections.fetch_quick("SELECT id FROM personas", [])
        return frozenset(str(persona_id) for (persona_id,) in rows)

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
        mine = " OR owner_id = ?" if viewer is not None else ""
        rows = await connections.fetch_quick(
            f"SELECT card, owner_id, shared FROM personas WHERE owner_id IS NULL OR shared = ?"
            f"{mine} ORDER BY id",
            [True, viewer] if viewer is not None else [True],
        )
        json_column = connections.json_column
        return [
            (dict(json_column(card)), None if owner is None else int(owner), bool(shared))
            for card, owner, shared in rows
        ]

    async def delete(self, persona_id: str, *, owner_id: int | None) -> bool:
        deleted = await Persona.filter(id=persona_id, owner_id=owner_id).delete() > 0
        self._changed()
        return deleted
