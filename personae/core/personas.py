"""Where personas come from and who may see them.

System personas are registered by plugins (the built-in ones through
``register_personas``), loaded from ``settings.persona_dirs``, or imported into the
database by an operator (owner None). Custom personas belong to one user and are
visible only to that user unless shared.
"""

from __future__ import annotations

import builtins
import logging
from dataclasses import dataclass
from pathlib import Path

from personae.core.cache import PerObject
from personae.core.cards import PersonaCard, card_to_dict, load_card, parse_card_json
from personae.core.errors import CardError, PersonaNotFound
from personae.core.types import Scope
from personae.storage.personas import PersonaStore, StoredCard

log = logging.getLogger("personae.personas")


@dataclass(frozen=True, slots=True)
class PersonaEntry:
    card: PersonaCard
    source: str  # "plugin:<name>", "file:<path>", "database"
    owner_id: int | None = None
    shared: bool = False

    @property
    def id(self) -> str:
        return self.card.id

    @property
    def is_system(self) -> bool:
        return self.owner_id is None


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

    async def entry(self, persona_id: str, viewer: int | None = None) -> PersonaEntry:
        """The persona if ``viewer`` may use it; else :class:`PersonaNotFound`
        (the same error whether it does not exist or belongs to someone else)."""
        if persona_id in self._system and persona_id not in await self.store.stored_ids():
            return self._system[persona_id]  # a built-in persona no stored card overrides
        stored = await self.store.get(persona_id)
        if stored is not None:
            document, owner_id, shared = stored
            if owner_id is None or shared or owner_id == viewer:
                return PersonaEntry(
                    card=parse_card_json(document),
                    source="database",
                    owner_id=owner_id,
                    shared=shared,
                )
            raise PersonaNotFound(persona_id)
        if persona_id in self._system:
            return self._system[persona_id]
        raise PersonaNotFound(persona_id)

    async def get(self, persona_id: str, viewer: int | None = None) -> PersonaCard:
        return (await self.entry(persona_id, viewer)).card

    async def list(self, viewer: int | None = None) -> list[PersonaEntry]:
        """Every persona ``viewer`` may use: system ones, then theirs and shared ones.
        The cards are parsed again only when the stored ones change (every turn of
        a persona in a sharing group lists them)."""
        stored = await self.store.visible(viewer)
        return list(self._listed.get(stored, lambda: self._entries(stored), extra=self._added))

    def _entries(self, stored: builtins.list[StoredCard]) -> tuple[PersonaEntry, ...]:
        entries = dict(self._system)
        for document, owner_id, shared in stored:
            try:
                card = parse_card_json(document)
            except CardError as exc:
                log.warning("stored persona is unreadable: %s", exc)
                continue
            entries[card.id] = PersonaEntry(card, "database", owner_id, shared)
        return tuple(sorted(entries.values(), key=lambda e: (not e.is_system, e.id)))

    async def save(self, card: PersonaCard, *, owner_id: int | None, shared: bool = False) -> None:
        """Store a persona (import or custom). A system id cannot be taken by a user,
        and a user cannot overwrite another user's persona."""
        existing = await self.store.get(card.id)
        if existing is not None and existing[1] != owner_id:
            raise CardError(f"A persona with id {card.id!r} already exists.")
        if existing is None and owner_id is not None and card.id in self._system:
            raise CardError(f"{card.id!r} is a system persona's id; choose another.")
        await self.store.save(card.id, card_to_dict(card), owner_id=owner_id, shared=shared)

    async def import_card(
        self,
        card: PersonaCard,
        *,
        owner_id: int | None,
        shared: bool = False,
        replace: bool = False,
    ) -> ImportResult:
        """Store an imported card without overwriting anything silently. When its id
        is taken (a built-in, another card, a user's persona) it gets the next free
        id (``mara-2``), unless ``replace``: then it replaces the stored card of the
        same owner, or overrides a built-in persona (which is said in the result;
        deleting the import brings the built-in back). Another owner's persona is
        never replaced."""
        stored = await self.store.get(card.id)
        taken = stored is not None or card.id in self._system
        if taken and not replace:
            card = card.model_copy(update={"id": await self.free_id(card.id)})
        notes: list[str] = []
        if replace and stored is None and card.id in self._system:
            source = self._system[card.id].source
            notes.append(
                f"It overrides the built-in persona {card.id!r} ({source}); delete it to "
                "bring the built-in back."
            )
        elif replace and stored is not None:
            notes.append(f"It replaced the stored persona {card.id!r}.")
        await self.save(card, owner_id=owner_id, shared=shared)
        return ImportResult(card=card, renamed=taken and not replace, notes=tuple(notes))

    async def free_id(self, wanted: str) -> str:
        """``wanted``, or ``wanted-2``, ``wanted-3``... : the first id no stored or
        built-in persona has."""
        ids = await self.store.stored_ids()
        base = wanted[:60].rstrip("-_") or "persona"
        candidate, number = wanted, 1
        while candidate in ids or candidate in self._system or await self.store.get(candidate):
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
        of the personas in the same sharing group. Always the same user."""
        group = card.settings.sharing_group
        scopes = [scope]
        if not group:
            return scopes
        for entry in await self.list(scope.user_id):
            if entry.id != scope.persona_id and entry.card.settings.sharing_group == group:
                scopes.append(Scope(entry.id, scope.user_id))
        return scopes
