"""Personas stored in the database (imported and custom ones).

Every stored persona has an immutable internal ``key`` (the primary key) besides
its user-visible ``id``. Memory, history, follow-ups and plugin state are stored
under the key, so a persona created later with the same id never sees them. Ids
are unique per owner: system personas (owner None) share one namespace, each
user's custom personas another.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from personae.core.cache import RefreshingCache
from personae.core.errors import CardError
from personae.storage import connections
from personae.storage.models import Persona

IDS_TTL_SECONDS = 30.0
KEY_PREFIX = "k."
"""Generated keys (of users' custom personas) start with it; a persona id cannot
contain a dot, so a generated key never equals an id. The key of a system persona,
or of a persona stored before keys existed (migration 0007), is its id."""


def new_key() -> str:
    """A fresh persona key: never an id, never generated twice (fits 64 chars)."""
    return KEY_PREFIX + secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class StoredCard:
    """One stored persona row."""

    key: str
    id: str
    card: dict[str, Any]
    owner_id: int | None
    shared: bool


_COLUMNS = "key, id, card, owner_id, shared"


def _row(row: tuple[Any, ...]) -> StoredCard:
    key, persona_id, card, owner, shared = row
    return StoredCard(
        key=str(key),
        id=str(persona_id),
        card=dict(connections.json_column(card)),
        owner_id=None if owner is None else int(owner),
        shared=bool(shared),
    )


class PersonaStore:
    """Raw card documents with their key, id and owner.

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
        rows = await connections.fetch_quick("SELECT DISTINCT id FROM personas", [])
        return frozenset(str(persona_id) for (persona_id,) in rows)

    async def save(
        self,
        key: str,
        persona_id: str,
        card: dict[str, Any],
        *,
        owner_id: int | None,
        shared: bool = False,
    ) -> None:
        """Store the persona under ``key`` (a new row, or the row of that key). A
        :class:`CardError` when the owner has another persona with this id (two
        created at the same moment: ids are unique per owner)."""
        try:
            await Persona.update_or_create(
                key=key,
                defaults={"id": persona_id, "card": card, "owner_id": owner_id, "shared": shared},
            )
        except IntegrityError:
            raise CardError(f"You already have a persona with id {persona_id!r}.") from None
        finally:
            self._changed()

    def _changed(self) -> None:
        self._ids.invalidate()
        self._visible.invalidate()

    async def with_id(self, persona_id: str) -> list[StoredCard]:
        """Every stored persona with this visible id, oldest first (of any owner:
        callers apply the visibility rules)."""
        rows = await connections.fetch(
            f"SELECT {_COLUMNS} FROM personas WHERE id = ? ORDER BY created_at, key",
            [persona_id],
        )
        return [_row(r) for r in rows]

    async def by_key(self, key: str) -> StoredCard | None:
        rows = await connections.fetch(f"SELECT {_COLUMNS} FROM personas WHERE key = ?", [key])
        return _row(rows[0]) if rows else None

    async def owned_by(self, owner_id: int) -> list[StoredCard]:
        """Every custom persona of one user."""
        rows = await connections.fetch(
            f"SELECT {_COLUMNS} FROM personas WHERE owner_id = ? ORDER BY key", [owner_id]
        )
        return [_row(r) for r in rows]

    async def visible(self, viewer: int | None) -> list[StoredCard]:
        """System personas plus the viewer's own and shared ones, oldest first (at
        most a few seconds old, and current after a change made through this store)."""
        return await self._visible.get(viewer)

    async def _read_visible(self, viewer: int | None) -> list[StoredCard]:
        mine = " OR owner_id = ?" if viewer is not None else ""
        rows = await connections.fetch_quick(
            f"SELECT {_COLUMNS} FROM personas WHERE owner_id IS NULL OR shared = ?"
            f"{mine} ORDER BY created_at, key",
            [True, viewer] if viewer is not None else [True],
        )
        return [_row(r) for r in rows]

    async def delete(self, key: str) -> bool:
        deleted = await Persona.filter(key=key).delete() > 0
        self._changed()
        return deleted
