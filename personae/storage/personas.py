"""Personas stored in the database (imported and custom ones)."""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q

from personae.storage.models import Persona


class PersonaStore:
    """Raw card documents keyed by persona id, with their owner.

    ``owner_id`` None means a system persona (imported by an operator)."""

    async def save(
        self, persona_id: str, card: dict[str, Any], *, owner_id: int | None, shared: bool = False
    ) -> None:
        await Persona.update_or_create(
            id=persona_id, defaults={"card": card, "owner_id": owner_id, "shared": shared}
        )

    async def get(self, persona_id: str) -> tuple[dict[str, Any], int | None, bool] | None:
        row = await Persona.get_or_none(id=persona_id)
        if row is None:
            return None
        return row.card, row.owner_id, row.shared  # type: ignore[attr-defined]

    async def visible(self, viewer: int | None) -> list[tuple[dict[str, Any], int | None, bool]]:
        """System personas plus the viewer's own and shared ones."""
        condition = Q(owner_id=None) | Q(shared=True)
        if viewer is not None:
            condition |= Q(owner_id=viewer)
        rows = await Persona.filter(condition).order_by("id")
        return [(row.card, row.owner_id, row.shared) for row in rows]  # type: ignore[attr-defined]

    async def delete(self, persona_id: str, *, owner_id: int | None) -> bool:
        return await Persona.filter(id=persona_id, owner_id=owner_id).delete() > 0
