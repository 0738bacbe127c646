"""Curiosity follow-up questions, always under an explicit Scope.

A follow-up is ``pending`` until its time comes, ``delivering`` while one
scheduler (of possibly several processes) has claimed it, ``sent`` once an adapter
delivered it (or it was woven into a reply), and ``cancelled`` when the user spoke
first or it went stale. Timestamps follow the caller's clock when ``now`` is given.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from personae.core.types import Scope
from personae.storage.models import FollowUp


@dataclass(frozen=True, slots=True)
class FollowUpRecord:
    id: int
    persona_id: str
    user_id: int
    conversation: str
    platform: str
    topic: str
    question: str
    status: str
    due_at: datetime
    sent_at: datetime | None
    created_at: datetime | None

    @property
    def scope(self) -> Scope:
        return Scope(self.persona_id, self.user_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "persona_id": self.persona_id,
            "conversation": self.conversation,
            "platform": self.platform,
            "topic": self.topic,
            "question": self.question,
            "status": self.status,
            "due_at": self.due_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


_FIELDS = (
    "id",
    "persona_id",
    "user_id",
    "conversation",
    "platform",
    "topic",
    "question",
    "status",
    "due_at",
    "sent_at",
    "created_at",
)


def _record(row: dict[str, Any]) -> FollowUpRecord:
    return FollowUpRecord(**{k: row[k] for k in _FIELDS})


class FollowUpStore:
    """Follow-ups a persona wants to ask a user: ``pending`` until delivered,
    then ``sent``; ``cancelled`` when the user spoke first or it went stale."""

    async def create(
        self,
        scope: Scope,
        *,
        conversation: str,
        platform: str,
        topic: str,
        question: str,
        due_at: datetime,
        status: str = "pending",
        now: datetime | None = None,
    ) -> FollowUpRecord:
        """Store a follow-up; ``status="sent"`` records one already asked (woven
        into a reply), with ``sent_at`` = ``now``."""
        stamp = now or datetime.now(UTC)
        row = await FollowUp.create(
            persona_id=scope.persona_id,
            user_id=scope.user_id,
            conversation=conversation,
            platform=platform,
            topic=topic[:200],
            question=question,
            due_at=due_at,
            status=status,
            sent_at=stamp if status == "sent" else None,
            created_at=stamp,
        )
        return await self.get(scope, row.id)  # type: ignore[return-value]

    async def get(self, scope: Scope, follow_up_id: int) -> FollowUpRecord | None:
        rows = await FollowUp.filter(
            id=follow_up_id, persona_id=scope.persona_id, user_id=scope.user_id
        ).values(*_FIELDS)
        return _record(rows[0]) if rows else None

    async def list(
        self, scope: Scope, *, status: str | None = None, conversation: str | None = None
    ) -> list[FollowUpRecord]:
        query = FollowUp.filter(persona_id=scope.persona_id, user_id=scope.user_id)
        if status is not None:
            query = query.filter(status=status)
        if conversation is not None:
            query = query.filter(conversation=conversation)
        return [_record(r) for r in await query.order_by("id").values(*_FIELDS)]

    async def pending_for_user(
        self, user_id: int, *, platform: str | None = None
    ) -> builtins.list[FollowUpRecord]:
        """Every follow-up waiting for delivery to this user, across personas."""
        query = FollowUp.filter(user_id=user_id, status="pending")
        if platform is not None:
            query = query.filter(platform=platform)
        return [_record(r) for r in await query.order_by("due_at").values(*_FIELDS)]

    async def due(self, now: datetime, *, limit: int = 100) -> builtins.list[FollowUpRecord]:
        """Pending follow-ups whose time has come, oldest first (for the scheduler)."""
        rows = (
            await FollowUp.filter(status="pending", due_at__lte=now)
            .order_by("due_at")
            .limit(limit)
            .values(*_FIELDS)
        )
        return [_record(r) for r in rows]

    async def mark(
        self,
        scope: Scope,
        follow_up_id: int,
        status: str,
        *,
        now: datetime | None = None,
        expected: tuple[str, ...] = ("pending", "delivering"),
    ) -> bool:
        """Move a pending (or claimed) follow-up to ``sent`` or ``cancelled``; False
        when it is in none of the ``expected`` states in this scope (so two
        deliverers never both send it)."""
        changes: dict[str, Any] = {"status": status}
        if status == "sent":
            changes["sent_at"] = now or datetime.now(UTC)
        updated = await FollowUp.filter(
            id=follow_up_id,
            persona_id=scope.persona_id,
            user_id=scope.user_id,
            status__in=list(expected),
        ).update(**changes)
        return updated > 0

    async def claim(self, scope: Scope, follow_up_id: int) -> bool:
        """Claim a pending follow-up for delivery (``pending`` -> ``delivering``).
        Only one claimer wins, even across processes."""
        updated = await FollowUp.filter(
            id=follow_up_id, persona_id=scope.persona_id, user_id=scope.user_id, status="pending"
        ).update(status="delivering")
        return updated > 0

    async def release(self, scope: Scope, follow_up_id: int) -> bool:
        """Give a claimed follow-up back (``delivering`` -> ``pending``) when no
        adapter could deliver it; a later attempt may."""
        updated = await FollowUp.filter(
            id=follow_up_id,
            persona_id=scope.persona_id,
            user_id=scope.user_id,
            status="delivering",
        ).update(status="pending")
        return updated > 0

    async def last_asked(self, scope: Scope) -> FollowUpRecord | None:
        """The scope's most recently asked (sent) follow-up, or None."""
        rows = (
            await FollowUp.filter(persona_id=scope.persona_id, user_id=scope.user_id, status="sent")
            .order_by("-sent_at", "-id")
            .limit(1)
            .values(*_FIELDS)
        )
        return _record(rows[0]) if rows else None

    async def count_asked(self, scope: Scope, *, since: datetime) -> int:
        """How many follow-ups the scope's persona asked its user since ``since``."""
        return await FollowUp.filter(
            persona_id=scope.persona_id, user_id=scope.user_id, status="sent", sent_at__gte=since
        ).count()

    async def open_for(self, scope: Scope) -> builtins.list[FollowUpRecord]:
        """The scope's follow-ups still waiting (``pending`` or ``delivering``)."""
        rows = (
            await FollowUp.filter(
                persona_id=scope.persona_id,
                user_id=scope.user_id,
                status__in=["pending", "delivering"],
            )
            .order_by("id")
            .values(*_FIELDS)
        )
        return [_record(r) for r in rows]

    async def cancel_pending(self, scope: Scope, conversation: str | None = None) -> int:
        """Cancel the scope's pending follow-ups (of one conversation, or all):
        the user spoke first. Returns how many."""
        query = FollowUp.filter(
            persona_id=scope.persona_id, user_id=scope.user_id, status="pending"
        )
        if conversation is not None:
            query = query.filter(conversation=conversation)
        return await query.update(status="cancelled")

    async def recent(
        self,
        scope: Scope,
        *,
        since: datetime | None = None,
        limit: int = 20,
        statuses: Sequence[str] | None = None,
    ) -> builtins.list[FollowUpRecord]:
        """The scope's latest follow-ups (of any status, or of ``statuses``), newest first."""
        query = FollowUp.filter(persona_id=scope.persona_id, user_id=scope.user_id)
        if statuses is not None:
            query = query.filter(status__in=list(statuses))
        if since is not None:
            query = query.filter(created_at__gte=since)
        rows = await query.order_by("-id").limit(limit).values(*_FIELDS)
        return [_record(r) for r in rows]

    async def forget(self, user_id: int, persona_id: str | None = None) -> int:
        """Delete every follow-up for a user (one persona, or all); returns the count."""
        query = FollowUp.filter(user_id=user_id)
        if persona_id is not None:
            query = query.filter(persona_id=persona_id)
        return await query.delete()

    async def export(
        self, user_id: int, persona_id: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Every follow-up for a user (one persona, or all) as JSON-able dicts."""
        query = FollowUp.filter(user_id=user_id)
        if persona_id is not None:
            query = query.filter(persona_id=persona_id)
        return [_record(r).as_dict() for r in await query.order_by("id").values(*_FIELDS)]
