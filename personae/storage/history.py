"""Conversation history, always read and written under an explicit Scope."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from personae.core.types import Scope
from personae.storage.models import Conversation, Message
from personae.storage.recall import parse_timestamp
from personae.storage.records import StoredMessage


def _postgres(conn: BaseDBAsyncClient) -> bool:
    return bool(conn.capabilities.dialect == "postgres")


def _marks(conn: BaseDBAsyncClient, count: int) -> list[str]:
    if _postgres(conn):
        return [f"${n}" for n in range(1, count + 1)]
    return ["?"] * count


def _timestamp(conn: BaseDBAsyncClient) -> datetime | str:
    """Now, as Tortoise stores it: a datetime for PostgreSQL, an ISO string in SQLite."""
    now = datetime.now(UTC)
    return now if _postgres(conn) else now.isoformat(sep=" ")


async def _insert_pair(
    conn: BaseDBAsyncClient, conversation_id: int, scope: Scope, asked: str, said: str
) -> tuple[int, int]:
    """Insert the user message and the reply in one statement; their ids."""
    p = _marks(conn, 12)
    now = _timestamp(conn)
    rows = await conn.execute_query_dict(
        "INSERT INTO messages (conversation_id, persona_id, user_id, role, content, created_at) "
        f"VALUES ({', '.join(p[:6])}), ({', '.join(p[6:])}) RETURNING id, role",
        [
            *(conversation_id, scope.persona_id, scope.user_id, "user", asked, now),
            *(conversation_id, scope.persona_id, scope.user_id, "assistant", said, now),
        ],
    )
    ids = {row["role"]: row["id"] for row in rows}
    return ids["user"], ids["assistant"]


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
    """Messages of the conversations between one persona and one user.

    The two statements on every turn's path (:meth:`recent` and
    :meth:`append_exchange`) are written in plain SQL: through the ORM they cost
    more in query building and row conversion than in the database."""

    def __init__(self) -> None:
        # (persona, user, key) -> conversation id; a stale id (the conversation was
        # deleted by another process) fails its foreign key and is read again.
        self._ids: OrderedDict[tuple[str, int, str], int] = OrderedDict()

    async def _conversation_id(self, scope: Scope, key: str) -> int | None:
        row = await Conversation.get_or_none(
            persona_id=scope.persona_id, user_id=scope.user_id, key=key
        ).only("id")
        return row.id if row else None

    def _forget_ids(self, user_id: int, persona_id: str | None = None) -> None:
        for cached in [k for k in self._ids if k[1] == user_id and persona_id in (None, k[0])]:
            del self._ids[cached]

    async def recent(self, scope: Scope, key: str, limit: int) -> list[StoredMessage]:
        """The last ``limit`` messages of this conversation, oldest first."""
        if limit <= 0:
            return []
        conn = Tortoise.get_connection("default")
        p = _marks(conn, 6)
        rows = await conn.execute_query_dict(
            "SELECT m.id, m.role, m.content, m.created_at FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id "
            f"WHERE m.persona_id = {p[0]} AND m.user_id = {p[1]} AND c.persona_id = {p[2]} "
            f"AND c.user_id = {p[3]} AND c.key = {p[4]} ORDER BY m.id DESC LIMIT {p[5]}",
            [scope.persona_id, scope.user_id, scope.persona_id, scope.user_id, key, limit],
        )
        return [
            StoredMessage(
                id=row["id"],
                conversation=key,
                persona_id=scope.persona_id,
                user_id=scope.user_id,
                role=row["role"],
                content=row["content"],
                created_at=parse_timestamp(row["created_at"]),
            )
            for row in reversed(rows)
        ]

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
        cache_key = (scope.persona_id, scope.user_id, key)
        for _ in range(3):
            conversation_id = self._ids.get(cache_key)
            try:
                if conversation_id is None:
                    async with in_transaction() as transaction:
                        conversation, _ = await Conversation.get_or_create(
                            persona_id=scope.persona_id,
                            user_id=scope.user_id,
                            key=key,
                            using_db=transaction,
                        )
                    conversation_id = conversation.id
                # One statement, so atomic on its own: no transaction (and no lock on
                # the connection) spans several round trips on every turn.
                conn = Tortoise.get_connection("default")
                ids = await _insert_pair(conn, conversation_id, scope, user_text, reply_text)
            except IntegrityError:
                # The conversation was created concurrently, or deleted elsewhere.
                self._ids.pop(cache_key, None)
                continue
            p = _marks(conn, 2)
            await conn.execute_query(
                f"UPDATE conversations SET updated_at = {p[0]} WHERE id = {p[1]}",
                [_timestamp(conn), conversation_id],
            )
            self._ids[cache_key] = conversation_id
            self._ids.move_to_end(cache_key)
            while len(self._ids) > 10_000:
                self._ids.popitem(last=False)
            return ids
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
        self._ids.pop((scope.persona_id, scope.user_id, key), None)
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
        self._forget_ids(user_id, persona_id)
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
