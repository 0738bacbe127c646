"""Memory items: what a persona remembers about a user, always under a Scope."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from personae.core.types import Scope
from personae.storage.models import MemoryItem
from personae.storage.records import MemoryRecord

_WORD = re.compile(r"[a-z0-9][a-z0-9'_-]+")
STOPWORDS = frozenset(
    "the and for are but not you your with this that have has had was were what when "
    "where who why how can could would should will just about from they them their there "
    "then than into onto out over very really some any all our ours his her hers its it's "
    "i'm im yes no okay ok also too is am be been being do does did of to in on at by an".split()
)
_FIELDS = (
    "id",
    "persona_id",
    "user_id",
    "kind",
    "text",
    "confidence",
    "source_message_ids",
    "created_at",
    "updated_at",
)


def keywords(text: str) -> set[str]:
    """The lower-cased content words of ``text``."""
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about four characters a token)."""
    return max(1, (len(text) + 3) // 4)


def _record(row: dict[str, Any]) -> MemoryRecord:
    return MemoryRecord(**{k: row[k] for k in _FIELDS})


def _same_user(scopes: Sequence[Scope]) -> int:
    users = {s.user_id for s in scopes}
    if len(users) != 1:
        raise ValueError("a recall reads one user's memory; scopes name several users")
    return users.pop()


class MemoryStore:
    """Scoped access to memory items. Every method takes the scope explicitly."""

    async def add(
        self,
        scope: Scope,
        text: str,
        *,
        kind: str = "fact",
        confidence: float = 0.8,
        source_message_ids: Iterable[int] = (),
    ) -> MemoryRecord:
        row = await MemoryItem.create(
            persona_id=scope.persona_id,
            user_id=scope.user_id,
            kind=kind,
            text=text,
            confidence=confidence,
            source_message_ids=list(source_message_ids),
        )
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
    ) -> MemoryRecord | None:
        """Change an item of this scope; None when the scope holds no such item."""
        changes: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        if text is not None:
            changes["text"] = text
        if kind is not None:
            changes["kind"] = kind
        if confidence is not None:
            changes["confidence"] = confidence
        updated = await MemoryItem.filter(
            id=item_id, persona_id=scope.persona_id, user_id=scope.user_id
        ).update(**changes)
        return await self._get(scope, item_id) if updated else None

    async def delete(self, scope: Scope, item_id: int) -> bool:
        """Delete an item of this scope; False when the scope holds no such item."""
        deleted = await MemoryItem.filter(
            id=item_id, persona_id=scope.persona_id, user_id=scope.user_id
        ).delete()
        return deleted > 0

    async def recall(
        self,
        scopes: Sequence[Scope],
        query: str,
        *,
        max_items: int = 12,
        budget_tokens: int = 400,
        candidates: int = 200,
        now: datetime | None = None,
    ) -> list[MemoryRecord]:
        """The items most relevant to ``query`` from the given scopes (one user's),
        within a token budget: keyword overlap, then recency and confidence."""
        if not scopes or max_items <= 0 or budget_tokens <= 0:
            return []
        user_id = _same_user(scopes)
        personas = sorted({s.persona_id for s in scopes})
        base = MemoryItem.filter(user_id=user_id)
        base = (
            base.filter(persona_id=personas[0])
            if len(personas) == 1
            else base.filter(persona_id__in=personas)
        )
        rows = await base.order_by("-updated_at").limit(candidates).values(*_FIELDS)
        wanted = keywords(query)
        now = now or datetime.now(UTC)

        def score(row: dict[str, Any]) -> float:
            words = keywords(row["text"])
            overlap = len(wanted & words) / math.sqrt(len(words)) if words and wanted else 0.0
            updated = row["updated_at"] or now
            age_days = max(0.0, (now - updated).total_seconds() / 86400)
            return 2.0 * overlap + 0.5 * math.exp(-age_days / 30) + 0.3 * row["confidence"]

        chosen: list[MemoryRecord] = []
        spent = 0
        for row in sorted(rows, key=score, reverse=True):
            cost = estimate_tokens(row["text"])
            if spent + cost > budget_tokens:
                continue
            chosen.append(_record(row))
            spent += cost
            if len(chosen) >= max_items:
                break
        return chosen

    async def forget(self, user_id: int, persona_id: str | None = None) -> int:
        """Delete every item about a user, for one persona or all; returns the count."""
        query = MemoryItem.filter(user_id=user_id)
        if persona_id is not None:
            query = query.filter(persona_id=persona_id)
        async with in_transaction() as conn:
            return await query.using_db(conn).delete()

    async def export(self, user_id: int, persona_id: str | None = None) -> list[dict[str, Any]]:
        query = MemoryItem.filter(user_id=user_id)
        if persona_id is not None:
            query = query.filter(persona_id=persona_id)
        rows = await query.order_by("persona_id", "id").values(*_FIELDS)
        return [_record(row).as_dict() for row in rows]
