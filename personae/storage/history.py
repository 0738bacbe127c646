"""Conversation history, always read and written under an explicit Scope."""

from __future__ import annotations

import enum
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from personae.core.cache import SharedReads, keep_recent
from personae.core.types import Scope
from personae.storage import connections
from personae.storage.connections import marks
from personae.storage.models import Conversation, Message
from personae.storage.recall import parse_timestamp
from personae.storage.records import StoredMessage


def _postgres(conn: BaseDBAsyncClient) -> bool:
    return bool(conn.capabilities.dialect == "postgres")


def _timestamp(conn: BaseDBAsyncClient, at: datetime | None = None) -> datetime | str:
    """A time (now by default) as Tortoise stores it: a datetime for PostgreSQL, an
    ISO string in SQLite."""
    at = at or datetime.now(UTC)
    return at if _postgres(conn) else at.isoformat(sep=" ")


async def _insert_pair(
    conn: BaseDBAsyncClient,
    conversation_id: int,
    scope: Scope,
    asked: str,
    said: str,
    at: datetime,
) -> tuple[int, int]:
    """Insert the user message and the reply in one statement; their ids. On
    SQLite the statement runs at once on this thread when it can
    (:func:`~personae.storage.connections.write_now`)."""
    postgres = _postgres(conn)
    p = marks(postgres, 12)
    now = _timestamp(conn, at)
    sql = (
        "INSERT INTO messages (conversation_id, persona_id, user_id, role, content, created_at) "
        f"VALUES ({', '.join(p[:6])}), ({', '.join(p[6:])}) RETURNING id, role"
    )
    params = [
        *(conversation_id, scope.persona_id, scope.user_id, "user", asked, now),
        *(conversation_id, scope.persona_id, scope.user_id, "assistant", said, now),
    ]
    written = None if postgres else connections.write_now(sql, params)
    if written is not None:
        ids = {role: message_id for message_id, role in written}
    else:
        rows = await conn.execute_query_dict(sql, params)
        ids = {row["role"]: row["id"] for row in rows}
    return ids["user"], ids["assistant"]


def _latest(*stamps: Any) -> datetime:
    """The latest of some stored timestamps (None ones skipped)."""
    return max(t for t in map(parse_timestamp, stamps) if t is not None)


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


_LAST_MESSAGES = (
    "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
    "WHERE m.persona_id = ? AND m.user_id = ? AND c.persona_id = ? AND c.user_id = ? "
    "AND c.key = ? ORDER BY m.id DESC LIMIT ?"
)
"""The last messages of one conversation of one scope (see :meth:`HistoryStore.recent`)."""

_ONE_CONVERSATION = "(c.persona_id = ? AND c.user_id = ? AND c.key = ?)"

_LAST_ID = (
    "(SELECT MAX(m.id) FROM messages m WHERE m.persona_id = c.persona_id "
    "AND m.user_id = c.user_id AND m.conversation_id = c.id)"
)
"""The id of conversation ``c``'s last message: one seek in the messages index,
which leads with (persona, user, conversation). Joined on the conversation alone,
the database scanned the whole index on every turn."""


def _last_ids_sql(conversations: int) -> str:
    """The last message id of each of ``conversations`` conversations, named by
    ``(persona_id, user_id, key)`` parameters."""
    return (
        f"SELECT c.persona_id, c.user_id, c.key, {_LAST_ID} FROM conversations c WHERE "
        + " OR ".join([_ONE_CONVERSATION] * conversations)
    )


class Unknown(enum.Enum):
    UNKNOWN = "unknown"


UNKNOWN = Unknown.UNKNOWN
"""What :meth:`HistoryStore.last_id_now` returns when it cannot read at once."""

ConversationKey = tuple[str, int, str]
"""(persona id, user id, conversation key)."""


def _drop_matching(
    cache: dict[ConversationKey, Any], user_id: int, persona_id: str | None, key: str | None = None
) -> None:
    """Forget a user's entries: of one persona (or all), one conversation (or all)."""
    for cached in [
        k for k in cache if k[1] == user_id and persona_id in (None, k[0]) and key in (None, k[2])
    ]:
        del cache[cached]


class HistoryStore:
    """Messages of the conversations between one persona and one user.

    The two statements on every turn's path (:meth:`recent` and
    :meth:`append_exchange`) are written in plain SQL: through the ORM they cost
    more in query building and row conversion than in the database.

    The last messages of the ``cache_conversations`` most recently used
    conversations are also kept in memory (:meth:`cached_recent`), updated by every
    read and every exchange stored through this store. Another process may have
    added to a conversation since, so a cached tail is only a guess the runtime
    checks against :meth:`last_id` while the model works (see ``Runtime``)."""

    def __init__(self, cache_conversations: int = 1000) -> None:
        # (persona, user, key) -> conversation id; a stale id (the conversation was
        # deleted by another process) fails its foreign key and is read again.
        self._ids: OrderedDict[ConversationKey, int] = OrderedDict()
        # (persona, user, key) -> (how many were asked for, the last messages)
        self._tails: OrderedDict[ConversationKey, tuple[int, list[StoredMessage]]]
        self._tails = OrderedDict()
        self._cache_size = cache_conversations
        self._generation = 0  # moved by every clear and forget
        self._last_ids: SharedReads[ConversationKey, int | None]
        self._last_ids = SharedReads(self._read_last_ids, None, direct=connections.has_read_pool)

    def cached_recent(self, scope: Scope, key: str, limit: int) -> list[StoredMessage] | None:
        """The last ``limit`` messages as this process last saw them, or None when
        it has not read this conversation (with at least that limit) lately."""
        entry = self._tails.get((scope.persona_id, scope.user_id, key))
        if entry is None or entry[0] < limit:
            return None
        self._tails.move_to_end((scope.persona_id, scope.user_id, key))
        return entry[1][-limit:] if limit > 0 else []

    def _keep_tail(
        self, cache_key: ConversationKey, limit: int, messages: list[StoredMessage]
    ) -> None:
        if self._cache_size <= 0 or limit <= 0:
            return
        keep_recent(self._tails, cache_key, (limit, messages[-limit:]), self._cache_size)

    def _drop_tails(
        self, user_id: int, persona_id: str | None = None, key: str | None = None
    ) -> None:
        self._generation += 1
        _drop_matching(self._tails, user_id, persona_id, key)

    async def _conversation_id(self, scope: Scope, key: str) -> int | None:
        row = await Conversation.get_or_none(
            persona_id=scope.persona_id, user_id=scope.user_id, key=key
        ).only("id")
        return row.id if row else None

    async def recent(self, scope: Scope, key: str, limit: int) -> list[StoredMessage]:
        """The last ``limit`` messages of this conversation, oldest first."""
        if limit <= 0:
            return []
        generation = self._generation
        rows = await connections.fetch(
            f"SELECT m.id, m.role, m.content, m.created_at {_LAST_MESSAGES}",
            [scope.persona_id, scope.user_id, scope.persona_id, scope.user_id, key, limit],
        )
        messages = [
            StoredMessage(
                id=message_id,
                conversation=key,
                persona_id=scope.persona_id,
                user_id=scope.user_id,
                role=role,
                content=content,
                created_at=parse_timestamp(created_at),
            )
            for message_id, role, content, created_at in reversed(rows)
        ]
        if generation == self._generation:  # no clear or forget ran meanwhile
            self._keep_tail((scope.persona_id, scope.user_id, key), limit, messages)
        return messages

    async def last_id(self, scope: Scope, key: str) -> int | None:
        """The id of the conversation's last message (None: it has none): enough
        to tell whether :meth:`cached_recent` is still what is stored, since
        messages are only added, or deleted with their whole conversation. On
        PostgreSQL, calls made in the same turn of the event loop share one query,
        so many turns starting at once do not each wait for a round trip of their
        own; on SQLite the read is a quick one on this thread
        (:func:`~personae.storage.connections.fetch_quick`), with nothing to share."""
        return await self._last_ids.get((scope.persona_id, scope.user_id, key))

    def last_id_now(self, scope: Scope, key: str) -> int | Unknown | None:
        """:meth:`last_id` if it can be read at once on this thread (SQLite, with
        nothing to wait for), else :data:`UNKNOWN`: no task and no trip through
        the event loop for the check every turn makes."""
        conversation = (scope.persona_id, scope.user_id, key)
        rows = connections.fetch_now(_last_ids_sql(1), conversation)
        if rows is None:
            return UNKNOWN
        return int(rows[0][3]) if rows and rows[0][3] is not None else None

    @staticmethod
    async def _read_last_ids(wanted: list[ConversationKey]) -> dict[ConversationKey, int | None]:
        found: dict[ConversationKey, int | None] = {}
        for start in range(0, len(wanted), 100):
            part = wanted[start : start + 100]
            rows = await connections.fetch_quick(
                _last_ids_sql(len(part)), [value for conversation in part for value in conversation]
            )
            for persona_id, user_id, key, last in rows:
                found[(persona_id, int(user_id), key)] = int(last) if last is not None else None
        return found

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
        generation = self._generation
        for _ in range(3):
            conversation_id = self._ids.get(cache_key)
            try:
                if conversation_id is None:
                    async with in_transaction("default") as transaction:
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
                now = datetime.now(UTC)
                ids = await _insert_pair(conn, conversation_id, scope, user_text, reply_text, now)
            except IntegrityError:
                # The conversation was created concurrently, or deleted elsewhere.
                self._ids.pop(cache_key, None)
                continue
            tail = self._tails.get(cache_key)
            if tail is not None and generation == self._generation:
                limit, messages = tail
                added = [
                    StoredMessage(ids[0], key, *cache_key[:2], "user", user_text, now),
                    StoredMessage(ids[1], key, *cache_key[:2], "assistant", reply_text, now),
                ]
                self._keep_tail(cache_key, limit, messages + added)
            elif tail is not None:
                self._tails.pop(cache_key, None)
            keep_recent(self._ids, cache_key, conversation_id, 10_000)
            return ids
        raise RuntimeError("could not store the exchange")

    async def start_conversation(
        self, scope: Scope, key: str, greeting: str, *, replace: bool = False
    ) -> StoredMessage | None:
        """Store ``greeting`` as the conversation's first message (the persona's),
        when it has no messages yet; with ``replace``, also when its only message is
        the persona's (a greeting not answered yet), whose text is replaced. None
        when the conversation has already begun."""
        cache_key = (scope.persona_id, scope.user_id, key)
        async with in_transaction("default") as conn:
            conversation, _ = await Conversation.get_or_create(
                persona_id=scope.persona_id, user_id=scope.user_id, key=key, using_db=conn
            )
            rows = (
                await Message.filter(
                    persona_id=scope.persona_id,
                    user_id=scope.user_id,
                    conversation_id=conversation.id,
                )
                .using_db(conn)
                .order_by("id")
                .limit(2)
            )
            if not rows:
                row = await Message.create(
                    conversation_id=conversation.id,
                    persona_id=scope.persona_id,
                    user_id=scope.user_id,
                    role="assistant",
                    content=greeting,
                    using_db=conn,
                )
            elif replace and len(rows) == 1 and rows[0].role == "assistant":
                row = rows[0]
                row.content = greeting
                await row.save(using_db=conn, update_fields=["content"])
            else:
                return None
        self._tails.pop(cache_key, None)
        self._generation += 1  # a tail read meanwhile may hold the old greeting
        keep_recent(self._ids, cache_key, conversation.id, 10_000)
        return _record(row, key)

    async def conversations(self, scope: Scope) -> list[dict[str, Any]]:
        """The scope's conversations, most recently active first. ``updated_at`` is
        the time of the last message (a turn writes only its messages, not the
        conversation row)."""
        rows = await connections.fetch(
            "SELECT c.key, c.created_at, c.updated_at, "
            f"(SELECT created_at FROM messages WHERE id = {_LAST_ID}) "
            "FROM conversations c WHERE c.persona_id = ? AND c.user_id = ?",
            [scope.persona_id, scope.user_id],
        )
        found = [
            {
                "key": key,
                "created_at": parse_timestamp(created_at),
                "updated_at": _latest(created_at, updated_at, last_message_at),
            }
            for key, created_at, updated_at, last_message_at in rows
        ]
        return sorted(found, key=lambda row: row["updated_at"], reverse=True)

    async def clear(self, scope: Scope, key: str) -> int:
        """Delete one conversation's messages; returns how many."""
        self._ids.pop((scope.persona_id, scope.user_id, key), None)
        self._drop_tails(scope.user_id, scope.persona_id, key)
        conversation_id = await self._conversation_id(scope, key)
        if conversation_id is None:
            return 0
        async with in_transaction("default") as conn:
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
        self._drop_tails(scope.user_id, scope.persona_id, key)  # and what was read meanwhile
        return count

    async def forget(self, user_id: int, persona_id: str | None = None) -> int:
        """Delete every message (and conversation) of a user, for one persona or all."""
        _drop_matching(self._ids, user_id, persona_id)
        self._drop_tails(user_id, persona_id)
        filters: dict[str, Any] = {"user_id": user_id}
        if persona_id is not None:
            filters["persona_id"] = persona_id
        async with in_transaction("default") as conn:
            count = await Message.filter(**filters).using_db(conn).delete()
            await Conversation.filter(**filters).using_db(conn).delete()
        self._drop_tails(user_id, persona_id)  # and what was read meanwhile
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
