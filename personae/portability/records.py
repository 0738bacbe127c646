"""Neutral values every importer produces and the writer consumes.

An importer reads a foreign source (acore_bot files, a MyBella database, a
personae JSONL export) into an :class:`ImportBatch`; nothing of the source's own
shape leaks past it. Each memory item has a stable natural key, so importing the
same source twice finds what the first run wrote and writes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from personae.core.cards import PersonaCard
from personae.plugins.profile.consolidation import normalize


@dataclass(frozen=True, slots=True)
class UserRef:
    """Who a record is about, as the source knows them.

    ``identities`` are ``(platform, external id)`` pairs (``("discord", "1234")``);
    the writer resolves them as :meth:`personae.storage.UserStore.resolve` does, so
    a later adapter of that platform finds the same user. ``username`` (a web login)
    and ``user_id`` (an id in this very database) are fallbacks for users without
    identities, used by personae's own exports."""

    identities: tuple[tuple[str, str], ...]
    name: str
    username: str | None = None
    user_id: int | None = None

    @property
    def key(self) -> str:
        """A stable text naming the user across databases."""
        if self.identities:
            platform, external = self.identities[0]
            return f"{platform}:{external}"
        if self.username:
            return f"username:{self.username}"
        return f"user:{self.user_id}"


def natural_key(persona_id: str, user: UserRef, kind: str, text: str) -> str:
    """The key that makes an imported memory item the same item on a second run:
    persona, user identity, kind and normalised text."""
    raw = "\x1f".join((persona_id, user.key, kind, normalize(text)))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def as_utc(value: datetime | None) -> datetime | None:
    """Naive timestamps from old sources are UTC; aware ones are converted."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 text (or ``YYYY-MM-DD HH:MM:SS``) as an aware datetime; None when
    absent or unreadable."""
    if isinstance(value, datetime):
        return as_utc(value)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return as_utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class PersonaIn:
    card: PersonaCard
    source: str
    owner: UserRef | None = None
    shared: bool = False


@dataclass(frozen=True, slots=True)
class ItemIn:
    persona_id: str
    user: UserRef
    kind: str
    text: str
    source: str
    confidence: float = 0.8
    created_at: datetime | None = None
    updated_at: datetime | None = None
    uses: int = 0
    last_used_at: datetime | None = None

    @property
    def key(self) -> str:
        return natural_key(self.persona_id, self.user, self.kind, self.text)


@dataclass(frozen=True, slots=True)
class MessageIn:
    role: str
    content: str
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConversationIn:
    persona_id: str
    user: UserRef
    key: str
    source: str
    messages: tuple[MessageIn, ...] = ()


@dataclass(frozen=True, slots=True)
class Problem:
    """A part of the source that was not imported, and why (never dropped silently),
    or a note on something imported differently from how the source had it (to
    another persona than the source said, and the option that changes it)."""

    source: str
    reason: str


@dataclass(slots=True)
class ImportBatch:
    """Everything one source holds, ready to be planned and written."""

    kind: str
    """``"acore"``, ``"mybella"`` or ``"jsonl"``."""
    source: str
    personas: list[PersonaIn] = field(default_factory=list)
    items: list[ItemIn] = field(default_factory=list)
    conversations: list[ConversationIn] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files_read: int = 0
