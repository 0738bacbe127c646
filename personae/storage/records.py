"""Plain values the stores return (never ORM objects, so callers cannot lazily
load rows outside their scope)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    id: int
    persona_id: str
    user_id: int
    kind: str
    text: str
    confidence: float
    source_message_ids: list[int] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("created_at", "updated_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    conversation: str
    persona_id: str
    user_id: int
    role: str
    content: str
    created_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["created_at"] is not None:
            data["created_at"] = data["created_at"].isoformat()
        return data


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    is_admin: bool
