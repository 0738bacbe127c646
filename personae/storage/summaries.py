"""Rolling conversation summaries, always read and written under an explicit Scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from personae.core.types import Scope
from personae.storage.models import ConversationSummary

KEEP = 2
"""Summaries kept per conversation: the one in use and the one prepared for the
next block (see ``personae.core.context``)."""


@dataclass(frozen=True, slots=True)
class StoredSummary:
    """What a conversation's messages up to ``through_id`` said, in short."""

    conversation: str
    through_id: int
    text: str
    created_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversation": self.conversation,
            "through_id": self.through_id,
            "text": self.text,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


def _record(row: ConversationSummary) -> StoredSummary:
    return StoredSummary(row.conversation, int(row.through_id), row.text, row.created_at)


class SummaryStore:
    """The summaries of one scope's conversations."""

    async def latest(self, scope: Scope, key: str) -> list[StoredSummary]:
        """The conversation's kept summaries, newest first."""
        rows = (
            await ConversationSummary.filter(
                persona_id=scope.persona_id, user_id=scope.user_id, conversation=key
            )
            .order_by("-through_id")
            .limit(KEEP)
        )
        return [_record(row) for row in rows]

    async def newest_per_conversation(self, scope: Scope) -> list[StoredSummary]:
        """The newest summary of each of the scope's conversations."""
        rows = await ConversationSummary.filter(
            persona_id=scope.persona_id, user_id=scope.user_id
        ).order_by("conversation", "-through_id")
        newest: dict[str, StoredSummary] = {}
        for row in rows:
            newest.setdefault(row.conversation, _record(row))
        return list(newest.values())

    async def add(self, scope: Scope, key: str, through_id: int, text: str) -> StoredSummary:
        """Store the summary of everything up to message ``through_id``; older
        ones beyond the last :data:`KEEP` are deleted."""
        filters = {"persona_id": scope.persona_id, "user_id": scope.user_id, "conversation": key}
        async with in_transaction("default") as conn:
            row = await ConversationSummary.create(
                **filters, through_id=through_id, text=text, using_db=conn
            )
            old = (
                await ConversationSummary.filter(**filters)
                .using_db(conn)
                .order_by("-through_id", "-id")
                .offset(KEEP)
                .values_list("id", flat=True)
            )
            if old:
                await ConversationSummary.filter(id__in=list(old)).using_db(conn).delete()
        return _record(row)

    async def clear(self, scope: Scope, key: str) -> int:
        """Delete one conversation's summaries."""
        return await ConversationSummary.filter(
            persona_id=scope.persona_id, user_id=scope.user_id, conversation=key
        ).delete()

    async def forget(self, user_id: int, persona_id: str | None = None) -> int:
        """Delete a user's summaries, of one persona or all."""
        query = ConversationSummary.filter(user_id=user_id)
        if persona_id is not None:
            query = query.filter(persona_id=persona_id)
        return await query.delete()

    async def export(self, user_id: int, persona_id: str | None = None) -> list[dict[str, Any]]:
        """A user's summaries (one persona or all) as JSON-able dicts."""
        query = ConversationSummary.filter(user_id=user_id)
        if persona_id is not None:
            query = query.filter(persona_id=persona_id)
        rows = await query.order_by("id")
        return [{"persona_id": row.persona_id, **_record(row).as_dict()} for row in rows]
