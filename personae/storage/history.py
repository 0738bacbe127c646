"""Conversation history, always read and written under an explicit Scope."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from personae.core.types import Scope
from personae.storage.models import Conversation, Message
from personae.storage.records import StoredMessage


def _record(row: Message, key: str) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        conversation=key,
        persona_id=row.persona_id,
        user_id=row.user_id,  # type: ignore[attr-defined]
        role=row.role,
        content=row.content,
        created_at=row.created_at,
    )


class HistoryStore:
    """Messages of the conversations between one persona and one user."""

    async def _conversation_id(self, scope: Scope, key: str) -> int | None:
        row = await Conversation.get_or_none(
            persona_id=scope.persona_id, user_id=scope.user_id, key=key
        ).only("id")
        return row.id if row else None

    async def recent(self, scope: Scope, key: str, limit: int) -> list[StoredMessage]:
        """The last ``limit`` messages of this conversation, oldest first."""
        if limit <= 0:
            return []
        conversation_id = await self._conversation_id(scope, key)
        if conversation_id is None:
            return []
        rows = (
            await Message.filter(
                persona_id=scope.persona_id,
                user_id=scope.user_id,
                conversation_id=conversation_id,
            )
            .order_by("-id")
            .limit(limit)
        )
        return [_record(row, key) for row in reversed(rows)]

    async def page(
        self, scope: Scope, key: str, *, before: int | None = None, limit: int = 50
    ) -> list[StoredMessage]:
        """Up to ``limit`` messages older than message id ``before``, oldest first."""
        conversation_id = await self._conversation_id(scope, key)
        if conversation_id is None:
            return []
        query = Message.filter(
            persona_id=scope.persona_id, user_id=scope.user_id, conversation_id=conversation_id
        )
        if before is not None:
            query = query.filter(id__lt=before)
        rows = await query.order_by("-id").limit(max(0, min(limit, 500)))
        return [_record(row, key) for row in reversed(rows)]

    async def append_exchange(
        self, scope: Scope, key: str, user_text: str, reply_text: str
    ) -> tuple[int, int]:
        """Store a user message and the persona's reply in one short transaction.
        Returns (user message id, reply message id)."""
        for _ in range(3):
            try:
                async with in_transaction() as conn:
                    conversation, _ = await Conversation.get_or_create(
                        persona_id=scope.persona_id,
                        user_id=scope.user_id,
                        key=key,
                        using_db=conn,
                    )
                    common: dict[str, Any] = {
                        "conversation_id": conversation.id,
                        "persona_id": scope.persona_id,
                        "user_id": scope.user_id,
                        "using_db": conn,
                    }
                    asked = await Message.create(role="user", content=user_text, **common)
                    said = await Message.create(role="assistant", content=reply_text, **common)
                    await (
                        Conversation.filter(id=conversation.id).using_db(conn).update(key=key)
                    )  # touches updated_at
                return asked.id, said.id
            except IntegrityError:
                continue  # the conversation row was created concurrently; retry
        raise RuntimeError("could not store the exchange")

    async def conversations(self, scope: Scope) -> list[dict[str, Any]]:
        rows = await Conversation.filter(
            persona_id=scope.persona_id, user_id=scope.user_id
        ).order_by("-updated_at")
        return [
            {"key": row.key, "created_at": row.created_at, "updated_at": row.updated_at}
            for row in rows
        ]

    async def clear(self, scope: Scope, key: str) -> int:
        """Delete one conversation's messages; returns how many."""
        conversation_id = await self._conversation_id(scope, key)
        if conversation_id is None:
            return 0
        async with in_transaction() as conn:
            count = (
                await Message.filter(
                    persona_id=scope.persona_id,
                    user_id=scope.user_id,
                    conversation_id=conversation_id,
                )
                .using_db(conn)
                .delete()
            )
            await Conversation.filter(id=conversation_id).using_db(conn).delete()
        return count

    async def forget(self, user_id: int, persona_id: str | None = None) -> int:
        """Delete every message (and conversation) of a user, for one persona or all."""
        filters: dict[str, Any] = {"user_id": user_id}
        if persona_id is not None:
            filters["persona_id"] = persona_id
        async with in_transaction() as conn:
            count = await Message.filter(**filters).using_db(conn).delete()
            await Conversation.filter(**filters).using_db(conn).delete()
        return count

    async def export(self, user_id: int, persona_id: str | None = None) -> list[dict[str, Any]]:
        """Every conversation of a user with its messages, as JSON-able dicts."""
        filters: dict[str, Any] = {"user_id": user_id}
        if persona_id is not None:
            filters["persona_id"] = persona_id
        conversations = await Conversation.filter(**filters).order_by("id")
        out = []
        for conv in conversations:
            messages = await Message.filter(
                user_id=user_id, persona_id=conv.persona_id, conversation_id=conv.id
            ).order_by("id")
            out.append(
                {
                    "persona_id": conv.persona_id,
                    "conversation": conv.key,
                    "messages": [_record(m, conv.key).as_dict() for m in messages],
                }
            )
        return out
