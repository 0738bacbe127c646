"""Memory items: what a persona remembers about a user, always under a Scope.

Besides plain reads and writes, the store offers:

- :meth:`MemoryStore.session`: a scope's items inside one short transaction that is
  serialised against every other session of the same scope, in this process (an
  asyncio lock) and across processes (a PostgreSQL advisory lock, or SQLite's write
  lock taken up front). Consolidation of learned items runs in a session, so two
  extractions for one scope never lose or duplicate an item.
- revisions: every update, retirement and merge writes a
  :class:`~personae.storage.models.MemoryRevision` row (old and new text, the
  message that caused it; for a merge, the merged note and the messages it came
  from). Deleting an item on the user's request removes its revisions too, so no
  stale text survives.
- usefulness: :meth:`MemoryStore.record_use` counts items that reached a prompt;
  eviction drops the least useful items (few uses, low confidence, long unused).
- optional embeddings, used by :meth:`MemoryStore.recall` next to keyword relevance.

Timestamps follow the caller's clock when ``now`` is given (the runtime's clock,
so tests can move time), else the wall clock.
"""

from __future__ import annotations

import builtins
import hashlib
import math
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from personae.core.locks import KeyedLocks
from personae.core.types import Scope
from personae.storage.models import MemoryItem, MemoryRevision
from personae.storage.recall import (
    ROW_COLUMNS,
    Candidates,
    candidate_rows,
    cosine,
    current_rows,
    decode_sources,
    estimate_tokens,
    keywords,
    to_record,
)
from personae.storage.records import MemoryRecord

__all__ = ["MemoryStore", "cosine", "estimate_tokens", "keywords"]

_FIELDS = ROW_COLUMNS
_ROW_FIELDS = (*_FIELDS, "uses", "last_used_at", "embedding")
_REVISION_FIELDS = (
    "id",
    "item_id",
    "persona_id",
    "user_id",
    "action",
    "kind",
    "old_text",
    "new_text",
    "message_id",
    "source_message_ids",
    "created_at",
)


_TICK = timedelta(microseconds=1)
_LISTED_FROM_CACHE = 1000
"""A :meth:`MemoryStore.list` of at most this many items reuses recall's cached
candidate lists (learning lists the known items on every extraction)."""


def usefulness(row: dict[str, Any], now: datetime) -> float:
    """How useful an item has been: uses, confidence and how recently it was used
    (or, never used, updated). Eviction drops the lowest first."""
    seen = row.get("last_used_at") or row.get("updated_at") or now
    idle_days = max(0.0, (now - seen).total_seconds() / 86400)
    uses = 0.5 * math.log1p(row.get("uses") or 0)
    return uses + float(row["confidence"]) + math.exp(-idle_days / 30)


_record_values = itemgetter(*_FIELDS)
assert _FIELDS == tuple(f.name for f in fields(MemoryRecord)), "a record's fields, in order"


def _record(row: dict[str, Any]) -> MemoryRecord:
    """A record of a row as the ORM's ``.values()`` returns it."""
    return to_record(_record_values(row))


def _row(item: MemoryItem) -> dict[str, Any]:
    return {name: getattr(item, name) for name in _ROW_FIELDS}


def _same_user(scopes: Sequence[Scope]) -> int:
    users = {s.user_id for s in scopes}
    if len(users) != 1:
        raise ValueError("a recall reads one user's memory; scopes name several users")
    return users.pop()


def _advisory_key(scope: Scope) -> int:
    digest = hashlib.blake2b(
        f"personae.memory:{scope.persona_id}:{scope.user_id}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    """One change to a memory item: ``update``, ``retire`` (a contradicted item) or
    ``merge`` (a note folded into the item: ``new_text`` is the note, ``old_text``
    the item's text, which stays; ``source_message_ids`` the note's messages)."""

    id: int
    item_id: int
    persona_id: str
    user_id: int
    action: str
    kind: str
    old_text: str
    new_text: str | None
    message_id: int | None
    source_message_ids: list[int]
    created_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "item_id": self.item_id,
            "action": self.action,
            "kind": self.kind,
            "old_text": self.old_text,
            "new_text": self.new_text,
            "message_id": self.message_id,
            "source_message_ids": list(self.source_message_ids),
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


def _revision(row: dict[str, Any]) -> RevisionRecord:
    values = {k: row[k] for k in _REVISION_FIELDS}
    values["source_message_ids"] = decode_sources(values["source_message_ids"])
    return RevisionRecord(**values)


class MemorySession:
    """One scope's memory inside a locked, short transaction (see :meth:`MemoryStore.session`).

    ``items`` is the scope's current state, read after the lock was taken. Never
    await an LLM (or anything slow) while a session is open."""

    def __init__(
        self, scope: Scope, conn: BaseDBAsyncClient, rows: list[dict[str, Any]], now: datetime
    ) -> None:
        self.scope = scope
        self.now = now
        self._conn = conn
        self._rows: dict[int, dict[str, Any]] = {row["id"]: row for row in rows}
        self._added: set[int] = set()

    @property
    def items(self) -> list[MemoryRecord]:
        """The scope's items as they are now in this transaction, oldest first."""
        return [_record(row) for row in self._rows.values()]

    def get(self, item_id: int) -> MemoryRecord | None:
        row = self._rows.get(item_id)
        return _record(row) if row else None

    def _query(self, item_id: int) -> Any:
        return MemoryItem.filter(
            id=item_id, persona_id=self.scope.persona_id, user_id=self.scope.user_id
        ).using_db(self._conn)

    async def add(
        self,
        text: str,
        *,
        kind: str = "fact",
        confidence: float = 0.8,
        source_message_ids: Iterable[int] = (),
        embedding: list[float] | None = None,
    ) -> MemoryRecord:
        """Store a new item."""
        item = await MemoryItem.create(
            persona_id=self.scope.persona_id,
            user_id=self.scope.user_id,
            kind=kind,
            text=text,
            confidence=confidence,
            source_message_ids=list(source_message_ids),
            embedding=embedding,
            created_at=self.now,
            using_db=self._conn,
        )
        await self._query(item.id).update(updated_at=self.now)
        item.updated_at = self.now
        row = _row(item)
        self._rows[item.id] = row
        self._added.add(item.id)
        return _record(row)

    async def update(
        self,
        item_id: int,
        *,
        text: str | None = None,
        kind: str | None = None,
        confidence: float | None = None,
        add_sources: Iterable[int] = (),
        embedding: list[float] | None = None,
        message_id: int | None = None,
    ) -> MemoryRecord | None:
        """Change an item; a changed text writes an ``update`` revision. None when
        the item is gone (deleted meanwhile): nothing is written then."""
        row = self._rows.get(item_id)
        if row is None:
            return None
        # updated_at must move on every change: recall caches rows by it.
        previous = row.get("updated_at")
        moved = self.now if previous is None or self.now > previous else previous + _TICK
        changes: dict[str, Any] = {"updated_at": moved}
        if text is not None and text != row["text"]:
            changes["text"] = text
            changes["embedding"] = embedding
        elif embedding is not None:
            changes["embedding"] = embedding
        if kind is not None:
            changes["kind"] = kind
        if confidence is not None:
            changes["confidence"] = confidence
        sources = list(dict.fromkeys([*row["source_message_ids"], *add_sources]))
        if sources != row["source_message_ids"]:
            changes["source_message_ids"] = sources
        if not await self._query(item_id).update(**changes):
            self._rows.pop(item_id, None)
            return None
        if "text" in changes:
            await MemoryRevision.create(
                item_id=item_id,
                persona_id=self.scope.persona_id,
                user_id=self.scope.user_id,
                action="update",
                kind=changes.get("kind", row["kind"]),
                old_text=row["text"],
                new_text=changes["text"],
                message_id=message_id,
                created_at=self.now,
                using_db=self._conn,
            )
        row.update(changes)
        return _record(row)

    async def merge(
        self,
        item_id: int,
        text: str,
        *,
        kind: str | None = None,
        confidence: float | None = None,
        sources: Iterable[int] = (),
        message_id: int | None = None,
    ) -> MemoryRecord | None:
        """Fold the note ``text`` into an item that already says it: the item keeps
        its text, takes ``kind`` and ``confidence`` when given and is credited with
        the note's ``sources``; a ``merge`` revision records the note. Nothing is
        written when this note was merged into the item before and would change
        nothing, nor when the item is gone (None then)."""
        row = self._rows.get(item_id)
        if row is None:
            return None
        known, credited = row["text"], list(sources)
        unchanged = (
            set(credited) <= set(row["source_message_ids"])
            and kind in (None, row["kind"])
            and confidence in (None, row["confidence"])
        )
        if unchanged and await self._merged_before(item_id, text):
            return _record(row)  # a second run of the same merge
        merged = await self.update(item_id, kind=kind, confidence=confidence, add_sources=credited)
        if merged is None:
            return None
        await MemoryRevision.create(
            item_id=item_id,
            persona_id=self.scope.persona_id,
            user_id=self.scope.user_id,
            action="merge",
            kind=merged.kind,
            old_text=known,
            new_text=text,
            message_id=message_id,
            source_message_ids=credited,
            created_at=self.now,
            using_db=self._conn,
        )
        return merged

    async def _merged_before(self, item_id: int, text: str) -> bool:
        return await (
            MemoryRevision.filter(
                item_id=item_id,
                persona_id=self.scope.persona_id,
                user_id=self.scope.user_id,
                action="merge",
                new_text=text,
            )
            .using_db(self._conn)
            .exists()
        )

    async def retire(self, item_id: int, *, message_id: int | None = None) -> bool:
        """Remove a contradicted item, keeping its text in a ``retire`` revision.
        False (and nothing written) when the item is already gone."""
        row = self._rows.pop(item_id, None)
        if row is None or not await self._query(item_id).delete():
            return False
        await MemoryRevision.create(
            item_id=item_id,
            persona_id=self.scope.persona_id,
            user_id=self.scope.user_id,
            action="retire",
            kind=row["kind"],
            old_text=row["text"],
            new_text=None,
            message_id=message_id,
            created_at=self.now,
            using_db=self._conn,
        )
        return True

    async def evict(self, max_items: int) -> list[MemoryRecord]:
        """Delete the least useful items (and their revisions) until at most
        ``max_items`` remain; items added in this session go last."""
        excess = len(self._rows) - max(0, max_items)
        if excess <= 0:
            return []
        # Items added in this session get a chance to prove useful: older ones go first.
        ranked = sorted(
            self._rows.values(),
            key=lambda r: (r["id"] in self._added, usefulness(r, self.now), r["id"]),
        )
        victims = ranked[:excess]
        ids = [row["id"] for row in victims]
        await (
            MemoryItem.filter(
                id__in=ids, persona_id=self.scope.persona_id, user_id=self.scope.user_id
            )
            .using_db(self._conn)
            .delete()
        )
        await (
            MemoryRevision.filter(
                item_id__in=ids, persona_id=self.scope.persona_id, user_id=self.scope.user_id
            )
            .using_db(self._conn)
            .delete()
        )
        for item_id in ids:
            self._rows.pop(item_id, None)
        return [_record(row) for row in victims]


class MemoryStore:
    """Scoped access to memory items. Every method takes the scope explicitly."""

    def __init__(self) -> None:
        self._scopes: KeyedLocks[Scope] = KeyedLocks()
        self._uses: dict[int, tuple[int, int, datetime]] = {}  # id -> (user, count, when)

    # -- sessions ----------------------------------------------------------------

    @asynccontextmanager
    async def session(
        self, scope: Scope, *, now: datetime | None = None
    ) -> AsyncIterator[MemorySession]:
        """Open a :class:`MemorySession` on ``scope``: one transaction, serialised
        against other sessions of the scope in this process and in others."""
        async with self._scopes.hold(scope), in_transaction("default") as conn:
            query = MemoryItem.filter(persona_id=scope.persona_id, user_id=scope.user_id)
            if conn.capabilities.dialect == "postgres":
                await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_advisory_key(scope)])
                query = query.select_for_update()
            else:  # take SQLite's write lock now, not on the first write
                await conn.execute_query("UPDATE memory_items SET uses = uses WHERE id = -1")
            items = await query.using_db(conn).order_by("id")
            yield MemorySession(scope, conn, [_row(i) for i in items], now or datetime.now(UTC))

    # -- single items ------------------------------------------------------------

    async def add(
        self,
        scope: Scope,
        text: str,
        *,
        kind: str = "fact",
        confidence: float = 0.8,
        source_message_ids: Iterable[int] = (),
        embedding: list[float] | None = None,
        now: datetime | None = None,
    ) -> MemoryRecord:
        """Store a new item in ``scope`` (no duplicate check; see :meth:`session`)."""
        stamp = now or datetime.now(UTC)
        row = await MemoryItem.create(
            persona_id=scope.persona_id,
            user_id=scope.user_id,
            kind=kind,
            text=text,
            confidence=confidence,
            source_message_ids=list(source_message_ids),
            embedding=embedding,
            created_at=stamp,
        )
        if now is not None:
            await MemoryItem.filter(id=row.id).update(updated_at=now)
        return await self._get(scope, row.id)  # type: ignore[return-value]

    async def _get(self, scope: Scope, item_id: int) -> MemoryRecord | None:
        rows = (
            await MemoryItem.filter(id=item_id, persona_id=scope.persona_id, user_id=scope.user_id)
            .limit(1)
            .values(*_FIELDS)
        )
        return _record(rows[0]) if rows else None

    async def get(self, scope: Scope, item_id: int) -> MemoryRecord | None:
        """The item, or None when it does not exist in this scope."""
        return await self._get(scope, item_id)

    async def list(self, scope: Scope, *, limit: int | None = None) -> list[MemoryRecord]:
        """The scope's items, most recently updated first."""
        if limit is not None and 0 < limit <= _LISTED_FROM_CACHE:
            listed = await current_rows(scope.user_id, [scope.persona_id], limit)
            return listed.records()
        query = MemoryItem.filter(persona_id=scope.persona_id, user_id=scope.user_id).order_by(
            "-updated_at", "-id"
        )
        if limit is not None:
            query = query.limit(limit)
        return [_record(row) for row in await query.values(*_FIELDS)]

    async def count(self, scope: Scope) -> int:
        return await MemoryItem.filter(persona_id=scope.persona_id, user_id=scope.user_id).count()

    async def update(
        self,
        scope: Scope,
        item_id: int,
        *,
        text: str | None = None,
        kind: str | None = None,
        confidence: float | None = None,
        message_id: int | None = None,
        now: datetime | None = None,
    ) -> MemoryRecord | None:
        """Change an item of this scope (a changed text writes an ``update``
        revision); None when the scope holds no such item."""
        async with self.session(scope, now=now) as session:
            record = await session.update(
                item_id, text=text, kind=kind, confidence=confidence, message_id=message_id
            )
        return record

    async def retire(
        self,
        scope: Scope,
        item_id: int,
        *,
        message_id: int | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Retire a contradicted item: it leaves the scope's items and its text is
        kept as a ``retire`` revision. False when the scope holds no such item."""
        async with self.session(scope, now=now) as session:
            return await session.retire(item_id, message_id=message_id)

    async def delete(self, scope: Scope, item_id: int) -> bool:
        """Delete an item of this scope and its revisions (the user asked for it to
        be gone: nothing of it is kept). False when the scope holds no such item."""
        async with in_transaction("default") as conn:
            deleted = (
                await MemoryItem.filter(
                    id=item_id, persona_id=scope.persona_id, user_id=scope.user_id
                )
                .using_db(conn)
                .delete()
            )
            if deleted:
                await (
                    MemoryRevision.filter(
                        item_id=item_id, persona_id=scope.persona_id, user_id=scope.user_id
                    )
                    .using_db(conn)
                    .delete()
                )
        return deleted > 0

    async def evict(
        self, scope: Scope, max_items: int, *, now: datetime | None = None
    ) -> builtins.list[MemoryRecord]:
        """Delete the scope's least useful items until at most ``max_items`` remain."""
        async with self.session(scope, now=now) as session:
            return await session.evict(max_items)

    async def record_use(
        self, scopes: Sequence[Scope], item_ids: Iterable[int], *, now: datetime | None = None
    ) -> int:
        """Count one use for each item (of these scopes) that reached a prompt."""
        ids = list(item_ids)
        if not scopes or not ids:
            return 0
        user_id = _same_user(scopes)
        personas = sorted({s.persona_id for s in scopes})
        return await MemoryItem.filter(id__in=ids, user_id=user_id, persona_id__in=personas).update(
            uses=F("uses") + 1, last_used_at=now or datetime.now(UTC)
        )

    def note_use(
        self, scopes: Sequence[Scope], item_ids: Iterable[int], *, now: datetime | None = None
    ) -> int:
        """Remember that items (of these scopes) reached a prompt, without writing:
        :meth:`flush_uses` writes the counts in a few grouped statements. Returns how
        many uses are waiting. Writing one UPDATE per turn cost the reply path more
        than everything else the profile plugin does."""
        ids = list(item_ids)
        if not scopes or not ids:
            return len(self._uses)
        user_id = _same_user(scopes)
        at = now or datetime.now(UTC)
        for item_id in ids:
            _, count, _ = self._uses.get(item_id, (user_id, 0, at))
            self._uses[item_id] = (user_id, count + 1, at)
        return len(self._uses)

    async def flush_uses(self) -> int:
        """Write the uses :meth:`note_use` collected; returns how many items changed."""
        waiting, self._uses = self._uses, {}
        groups: dict[tuple[int, int], tuple[builtins.list[int], datetime]] = {}
        for item_id, (user_id, count, at) in waiting.items():
            ids, latest = groups.get((user_id, count), ([], at))
            ids.append(item_id)
            groups[(user_id, count)] = (ids, max(latest, at))
        changed = 0
        for (user_id, count), (ids, at) in groups.items():
            changed += await MemoryItem.filter(id__in=ids, user_id=user_id).update(
                uses=F("uses") + count, last_used_at=at
            )
        return changed

    async def set_embedding(
        self, scope: Scope, item_id: int, embedding: builtins.list[float]
    ) -> bool:
        """Store an item's embedding vector; False when the scope holds no such item."""
        updated = await MemoryItem.filter(
            id=item_id, persona_id=scope.persona_id, user_id=scope.user_id
        ).update(embedding=embedding)
        return updated > 0

    async def usage(self, scope: Scope, item_id: int) -> tuple[int, datetime | None] | None:
        """``(uses, last_used_at)`` of an item, or None when the scope holds no such item."""
        rows = await MemoryItem.filter(
            id=item_id, persona_id=scope.persona_id, user_id=scope.user_id
        ).values("uses", "last_used_at")
        return (rows[0]["uses"], rows[0]["last_used_at"]) if rows else None

    async def revisions(
        self, scope: Scope, *, item_id: int | None = None, limit: int = 100
    ) -> builtins.list[RevisionRecord]:
        """The scope's revisions (of one item, or all), oldest first."""
        query = MemoryRevision.filter(persona_id=scope.persona_id, user_id=scope.user_id)
        if item_id is not None:
            query = query.filter(item_id=item_id)
        rows = await query.order_by("id").limit(limit).values(*_REVISION_FIELDS)
        return [_revision(row) for row in rows]

    # -- recall ------------------------------------------------------------------

    async def recall(
        self,
        scopes: Sequence[Scope],
        query: str,
        *,
        context: str = "",
        query_embedding: Sequence[float] | None = None,
        max_items: int = 12,
        budget_tokens: int = 400,
        candidates: int = 200,
        now: datetime | None = None,
    ) -> builtins.list[MemoryRecord]:
        """The items most relevant to ``query`` from the given scopes (one user's),
        within a token budget, best first.

        Relevance is keyword overlap with ``query`` (and, at half weight, with
        ``context``: the recent conversation), plus embedding similarity when
        ``query_embedding`` is given and items have embeddings; recency and
        confidence break ties."""
        if not scopes or max_items <= 0 or budget_tokens <= 0:
            return []
        user_id = _same_user(scopes)
        personas = sorted({s.persona_id for s in scopes})
        if query_embedding is None:
            found = await current_rows(user_id, personas, candidates)
        else:  # embeddings are read fresh with the rows
            rows = await candidate_rows(user_id, personas, candidates, with_embedding=True)
            found = Candidates(rows)
        chosen = found.rank(
            query,
            context=context,
            query_embedding=query_embedding,
            max_items=max_items,
            budget_tokens=budget_tokens,
            now=now or datetime.now(UTC),
        )
        return [found.record(i) for i in chosen]

    # -- the data contract -------------------------------------------------------

    async def forget(self, user_id: int, persona_id: str | None = None) -> int:
        """Delete every item and revision about a user, for one persona or all;
        returns the count of rows deleted."""
        filters: dict[str, Any] = {"user_id": user_id}
        if persona_id is not None:
            filters["persona_id"] = persona_id
        async with in_transaction("default") as conn:
            # Counted, not taken from the DELETE: on SQLite the change count of a
            # statement includes the rows its triggers wrote (memory_versions).
            items = await MemoryItem.filter(**filters).using_db(conn).count()
            await MemoryItem.filter(**filters).using_db(conn).delete()
            revisions = await MemoryRevision.filter(**filters).using_db(conn).delete()
        return items + revisions

    async def export(
        self, user_id: int, persona_id: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Everything remembered about a user: each current item (``status``
        ``"active"``) with its use count and change history, then each retired item
        (``status`` ``"retired"``, its last text) with its history."""
        filters: dict[str, Any] = {"user_id": user_id}
        if persona_id is not None:
            filters["persona_id"] = persona_id
        rows = await MemoryItem.filter(**filters).order_by("persona_id", "id").values(*_ROW_FIELDS)
        revision_rows = (
            await MemoryRevision.filter(**filters).order_by("id").values(*_REVISION_FIELDS)
        )
        history: dict[tuple[str, int], list[RevisionRecord]] = {}
        for revision_row in revision_rows:
            revision = _revision(revision_row)
            history.setdefault((revision.persona_id, revision.item_id), []).append(revision)
        out: builtins.list[dict[str, Any]] = []
        for row in rows:
            data = _record(row).as_dict()
            used = row["last_used_at"]
            data |= {"status": "active", "uses": row["uses"]}
            data |= {"last_used_at": used.isoformat() if used else None}
            changes = history.pop((row["persona_id"], row["id"]), [])
            out.append(data | {"revisions": [r.as_dict() for r in changes]})
        for (persona, item_id), changes in sorted(history.items()):
            last = changes[-1]
            out.append(
                {
                    "id": item_id,
                    "persona_id": persona,
                    "user_id": user_id,
                    "kind": last.kind,
                    "text": last.new_text if last.new_text is not None else last.old_text,
                    "status": "retired" if last.action == "retire" else "gone",
                    "revisions": [r.as_dict() for r in changes],
                }
            )
        return out
