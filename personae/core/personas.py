"""Where personas come from and who may see them.

System personas are registered by plugins (the built-in ones through
``register_personas``), loaded from ``settings.persona_dirs``, or imported into the
database by an operator (owner None). Custom personas belong to one user and are
visible only to that user unless shared.

A persona has a visible id and an immutable internal key: memory is stored under
the key (``Scope.persona_id``), so a persona that takes a deleted one's id starts
empty. System personas (built-in, card-folder, imported by an operator) are keyed
by their id; a user's custom persona by a generated key that is never reused.
Ids are unique per owner; a viewer's id resolves to their own persona first, then
a system persona, then the oldest shared persona of another user with that id.

A sharing group belongs to an owner: a system persona shares only with system
personas of its group, a user's custom persona only with the same user's custom
personas of its group, whatever a card declares.
"""

from __future__ import annotations

import builtins
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from personae.core.cache import PerObject
from personae.core.cards import PersonaCard, card_to_dict, load_card, parse_card_json
from personae.core.errors import CardError, PersonaNotFound
from personae.core.types import Scope
from personae.storage.personas import PersonaStore, StoredCard, new_key

log = logging.getLogger("personae.personas")


@dataclass(frozen=True, slots=True)
class PersonaEntry:
    card: PersonaCard
    source: str  # "plugin:<name>", "file:<path>", "database"
    owner_id: int | None = None
    shared: bool = False
    stored_key: str | None = None

    @property
    def id(self) -> str:
        """The visible id (what users type, see and export)."""
        return self.card.id

    @property
    def key(self) -> str:
        """The immutable internal key memory is stored under (``Scope.persona_id``)."""
        return self.stored_key or self.card.id

    @property
    def is_system(self) -> bool:
        return self.owner_id is None

    def scope(self, user_id: int) -> Scope:
        """The scope of this persona's memory of one user."""
        return Scope(self.key, user_id)


AVATAR_NAME = re.compile(r"[0-9a-f]{32}\.png")
"""The name the server gives an avatar file it stores (``<data_dir>/avatars``)."""


def avatar_file(data_dir: Path, card: PersonaCard) -> Path | None:
    """The avatar file a card names, if it is one the server stored."""
    name = card.settings.avatar
    return data_dir / "avatars" / name if name and AVATAR_NAME.fullmatch(name) else None


def _may_see(stored: StoredCard, viewer: int | None) -> bool:
    return stored.owner_id is None or stored.shared or stored.owner_id == viewer


def _rank(stored: StoredCard, viewer: int | None) -> int:
    """Which persona an id names for ``viewer``: their own, a system one, a shared one."""
    if stored.owner_id is not None and stored.owner_id == viewer:
        return 0
    return 1 if stored.owner_id is None else 2


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What :meth:`PersonaRegistry.import_card` stored: the card as saved (its id
    may differ from the file's), and what a user should be told."""

    card: PersonaCard
    renamed: bool = False
    notes: tuple[str, ...] = ()


class PersonaRegistry:
    """Looks up personas with their visibility rules applied."""

    def __init__(self, store: PersonaStore) -> None:
        self.store = store
        self._system: dict[str, PersonaEntry] = {}
        self._listed: PerObject[tuple[PersonaEntry, ...]] = PerObject(4096)
        """The listings of recent viewers, by the stored list each was made from
        and the count of system personas added when it was made."""
        self._added = 0

    def add_system(self, card: PersonaCard, source: str) -> None:
        self._system[card.id] = PersonaEntry(card=card, source=source)
        self._added += 1

    def load_dir(self, folder: Path) -> int:
        """Load every ``*.json``/``*.png`` card in ``folder`` as a system persona.
        Unreadable cards are logged and skipped."""
        count = 0
        for path in sorted(folder.glob("*")):
            if path.suffix.lower() not in {".json", ".png"}:
                continue
            try:
                self.add_system(load_card(path), source=f"file:{path}")
                count += 1
            except CardError as exc:
                log.warning("skipping persona card %s: %s", path, exc)
        return count

    @staticmethod
    def _stored_entry(stored: StoredCard) -> PersonaEntry:
        return PersonaEntry(
            card=parse_card_json(stored.card),
            source="database",
            owner_id=stored.owner_id,
            shared=stored.shared,
            stored_key=stored.key,
        )

    async def entry(self, persona_id: str, viewer: int | None = None) -> PersonaEntry:
        """The persona ``persona_id`` names for ``viewer`` (their own first, then a
        system one, then a shared one); else :class:`PersonaNotFound` (the same
        error whether it does not exist or belongs to someone else)."""
        if persona_id in self._system and persona_id not in await self.store.stored_ids():
            return self._system[persona_id]  # a built-in persona no stored card overrides
        candidates = [s for s in await self.store.with_id(persona_id) if _may_see(s, viewer)]
        if candidates:
            return self._stored_entry(min(candidates, key=lambda s: _rank(s, viewer)))
        if persona_id in self._system:
            return self._system[persona_id]
        raise PersonaNotFound(persona_id)

    async def by_key(self, key: str, viewer: int | None = None) -> PersonaEntry:
        """The persona stored under ``key`` if ``viewer`` may use it; else
        :class:`PersonaNotFound`. For code that holds a scope (background work,
        follow-ups), not for ids users type."""
        stored = await self.store.by_key(key)
        if stored is not None:
            if _may_see(stored, viewer):
                return self._stored_entry(stored)
            raise PersonaNotFound(key)
        if key in self._system:
            return self._system[key]
        raise PersonaNotFound(key)

    async def scope(self, persona_id: str, user_id: int) -> Scope:
        """The memory scope of the persona ``persona_id`` names for ``user_id``. An
        id the user cannot see stands for itself (nothing of anyone else's is
        stored under it: generated keys are never ids)."""
        try:
            return (await self.entry(persona_id, viewer=user_id)).scope(user_id)
        except PersonaNotFound:
            return Scope(persona_id, user_id)

    async def key_of(self, persona_id: str, owner_id: int | None) -> str:
        """The key of ``owner_id``'s persona ``persona_id`` (a system one for None)."""
        for stored in await self.store.with_id(persona_id):
            if stored.owner_id == owner_id:
                return stored.key
        return persona_id

    async def get(self, persona_id: str, viewer: int | None = None) -> PersonaCard:
        return (await self.entry(persona_id, viewer)).card

    async def list(self, viewer: int | None = None) -> list[PersonaEntry]:
        """Every persona ``viewer`` may use, one per id (the one the id names for
        them): system ones, then theirs and shared ones. The cards are parsed again
        only when the stored ones change (every turn of a persona in a sharing group
        lists them)."""
        stored = await self.store.visible(viewer)
        return list(
            self._listed.get(stored, lambda: self._entries(stored, viewer), extra=self._added)
        )

    def _entries(
        self, stored: builtins.list[StoredCard], viewer: int | None
    ) -> tuple[PersonaEntry, ...]:
        # Per id the persona it names for the viewer: the lowest rank, and of equal
        # ranks the oldest (``stored`` is oldest first). A stored system persona
        # (rank 1) overrides a built-in one of its id (1.5).
        best: dict[str, tuple[float, PersonaEntry]] = {
            persona_id: (1.5, entry) for persona_id, entry in self._system.items()
        }
        for row in stored:
            rank = _rank(row, viewer)
            if row.id in best and best[row.id][0] <= rank:
                continue
            try:
                best[row.id] = (rank, self._stored_entry(row))
            except CardError as exc:
                log.warning("stored persona is unreadable: %s", exc)
        entries = (entry for _, entry in best.values())
        return tuple(sorted(entries, key=lambda e: (not e.is_system, e.id)))

    async def save(
        self, card: PersonaCard, *, owner_id: int | None, shared: bool = False
    ) -> PersonaEntry:
        """Store a persona (import, custom or edit) and return it. Ids are unique
        per owner: saving the id of a persona the owner already has changes that
        persona (its key stays). A user cannot take a system persona's id, and a
        shared persona cannot take an id that a system or another shared persona
        has (those are public); another user's private persona is no obstacle."""
        same_id = await self.store.with_id(card.id)
        mine = next((s for s in same_id if s.owner_id == owner_id), None)
        if owner_id is not None and (
            card.id in self._system or any(s.owner_id is None for s in same_id)
        ):
            raise CardError(f"{card.id!r} is a system persona's id; choose another.")
        if (
            owner_id is not None
            and shared
            and any(s.shared and s.owner_id not in (None, owner_id) for s in same_id)
        ):
            raise CardError(f"A shared persona with id {card.id!r} already exists.")
        if mine is not None:
            key = mine.key
        elif owner_id is None:
            key = card.id  # system personas are keyed by id (an override keeps the memory)
        else:
            key = new_key()  # never an id, never reused
        await self.store.save(key, card.id, card_to_dict(card), owner_id=owner_id, shared=shared)
        return PersonaEntry(card, "database", owner_id, shared, key)

    async def import_card(
        self,
        card: PersonaCard,
        *,
        owner_id: int | None,
        shared: bool = False,
        replace: bool = False,
    ) -> ImportResult:
        """Store an imported card without overwriting anything silently. When its id
        is taken for this owner (their own persona of that id, a system persona, or
        for a shared import another shared persona) it gets the next free id
        (``mara-2``), unless ``replace``: then it replaces the owner's own persona of
        that id (its memory stays), or, for a system import, overrides a built-in
        persona (said in the result; deleting the import brings the built-in back).
        Another user's private persona never counts as taken (ids are per owner, so
        an import reveals nothing of them), and another owner's persona is never
        replaced."""
        taken = await self._taken(card.id, owner_id=owner_id, shared=shared)
        if taken and not replace:
            card = card.model_copy(update={"id": await self.free_id(card.id, owner_id, shared)})
        notes: list[str] = []
        if replace and taken:
            same_id = await self.store.with_id(card.id)
            if any(s.owner_id == owner_id for s in same_id):
                notes.append(f"It replaced the stored persona {card.id!r}.")
            elif owner_id is None and card.id in self._system:
                source = self._system[card.id].source
                notes.append(
                    f"It overrides the built-in persona {card.id!r} ({source}); delete it to "
                    "bring the built-in back."
                )
        await self.save(card, owner_id=owner_id, shared=shared)
        return ImportResult(card=card, renamed=taken and not replace, notes=tuple(notes))

    async def _taken(self, persona_id: str, *, owner_id: int | None, shared: bool) -> bool:
        """Whether storing ``persona_id`` for this owner would change or shadow a
        persona someone can see under that id: the owner's own, a system one, or
        (for a shared persona) another shared one."""
        if persona_id in self._system:
            return True
        for stored in await self.store.with_id(persona_id):
            if stored.owner_id == owner_id or stored.owner_id is None:
                return True
            if shared and stored.shared:
                return True
        return False

    async def free_id(self, wanted: str, owner_id: int | None = None, shared: bool = False) -> str:
        """``wanted``, or ``wanted-2``, ``wanted-3``... : the first id that is not
        taken for this owner (see :meth:`import_card`)."""
        base = wanted[:60].rstrip("-_") or "persona"
        candidate, number = wanted, 1
        while await self._taken(candidate, owner_id=owner_id, shared=shared):
            number += 1
            candidate = f"{base}-{number}"
        return candidate

    def has_system(self, persona_id: str) -> bool:
        return persona_id in self._system

    def system_source(self, persona_id: str) -> str | None:
        """Where a built-in persona comes from (``plugin:<name>``, ``file:<path>``)."""
        entry = self._system.get(persona_id)
        return entry.source if entry else None

    async def readable_scopes(self, card: PersonaCard, scope: Scope) -> builtins.list[Scope]:
        """The scopes a turn of ``card`` in ``scope`` may read: its own, then those
        of the personas in the same sharing group under the same owner (system
        personas with system personas, a user's personas with that user's own).
        ``scope.persona_id`` is the persona's key. Always the same user."""
        group = card.settings.sharing_group
        scopes = [scope]
        if not group:
            return scopes
        entries = await self.list(scope.user_id)
        me = next((e for e in entries if e.key == scope.persona_id), None)
        if me is None:
            return scopes  # not a persona this user may use: nothing to share
        for entry in entries:
            if (
                entry.key != scope.persona_id
                and entry.owner_id == me.owner_id
                and entry.card.settings.sharing_group == group
            ):
                scopes.append(entry.scope(scope.user_id))
        return scopes
