"""Memory as JSON Lines: ``personae memory export`` and ``personae memory import``.

The first line is a header::

    {"type": "header", "format": "personae.memory", "schema_version": 1, ...}

then one line per memory item::

    {"type": "memory_item", "key": "<natural key>", "persona_id": "sage",
     "user": {"name": "Ann", "identities": [["discord", "1234"]], "username": null, "id": 7},
     "kind": "fact", "text": "Works as a nurse", "confidence": 0.8,
     "created_at": "...", "updated_at": "...", "uses": 3, "last_used_at": null}

A user is found on import by an identity, else by web login (``username``), else
(only when neither is given) by ``id`` in the same database; missing users are
created. Import validates every line before writing any (all or nothing) and
skips items whose natural key is already present, so a second import changes
nothing. Retired items and revision history are not exported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from personae import __version__
from personae.plugins.profile.safety import screen_memory
from personae.portability.errors import PortabilityError
from personae.portability.records import ImportBatch, ItemIn, Problem, UserRef, as_utc
from personae.storage import models as m

FORMAT = "personae.memory"
SCHEMA_VERSION = 1
MAX_ERRORS_SHOWN = 10


class Header(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["header"]
    format: Literal["personae.memory"]
    schema_version: int


class UserLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    identities: list[tuple[str, str]] = Field(default_factory=list)
    username: str | None = Field(default=None, max_length=64)
    id: int | None = None

    @model_validator(mode="after")
    def _named(self) -> UserLine:
        if not self.identities and not self.username and self.id is None:
            raise ValueError("the user needs an identity, a username or an id")
        return self

    def ref(self) -> UserRef:
        return UserRef(tuple(self.identities), self.name, self.username, self.id)


class ItemLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["memory_item"]
    key: str | None = None
    persona_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    user: UserLine
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    text: str = Field(min_length=1, max_length=4000)
    confidence: float = Field(0.8, ge=0.0, le=1.0)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    uses: int = Field(0, ge=0)
    last_used_at: datetime | None = None

    def item(self, source: str) -> ItemIn:
        return ItemIn(
            self.persona_id,
            self.user.ref(),
            self.kind,
            self.text,
            source,
            self.confidence,
            as_utc(self.created_at),
            as_utc(self.updated_at),
            self.uses,
            as_utc(self.last_used_at),
        )

    @model_validator(mode="after")
    def _consistent(self) -> ItemLine:
        if not self.text.strip():
            raise ValueError("text is blank")
        if self.key is not None and self.key != self.item("").key:
            raise ValueError("key does not match the item's persona, user, kind and text")
        return self


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


async def export_lines(user_id: int | None = None, persona_id: str | None = None) -> list[str]:
    """The header and one line per current memory item (of one user and/or persona)."""
    filters: dict[str, Any] = {}
    if user_id is not None:
        filters["user_id"] = user_id
    if persona_id is not None:
        filters["persona_id"] = persona_id
    rows = await m.MemoryItem.filter(**filters).order_by("persona_id", "user_id", "id")
    users: dict[int, UserLine] = {}
    for user in await m.User.filter(id__in=sorted({r.user_id for r in rows})):  # type: ignore[attr-defined]
        identities = await m.Identity.filter(user_id=user.id).order_by("id")
        users[user.id] = UserLine(
            name=user.name or f"user {user.id}",
            identities=[(i.platform, i.external_id) for i in identities],
            username=user.username,
            id=user.id,
        )
    header = {
        "type": "header",
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "personae_version": __version__,
        "exported_at": datetime.now(UTC).isoformat(),
        "filter": {"user_id": user_id, "persona_id": persona_id},
        "count": len(rows),
    }
    lines = [json.dumps(header, ensure_ascii=False)]
    for row in rows:
        user_line = users[row.user_id]  # type: ignore[attr-defined]
        line = ItemLine(
            type="memory_item",
            persona_id=row.persona_id,
            user=user_line,
            kind=row.kind,
            text=row.text,
            confidence=row.confidence,
            created_at=row.created_at,
            updated_at=row.updated_at,
            uses=row.uses,
            last_used_at=row.last_used_at,
        )
        data = line.model_dump(mode="json")
        data["key"] = line.item("").key
        for name in ("created_at", "updated_at", "last_used_at"):
            data[name] = _time(getattr(line, name))
        lines.append(json.dumps(data, ensure_ascii=False))
    return lines


def write_lines(lines: Iterable[str], target: IO[str]) -> None:
    for line in lines:
        target.write(line + "\n")


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def parse_lines(text: str, source: str) -> ImportBatch:
    """Validate every line; raise listing the bad ones, or return the batch."""
    lines = text.splitlines()
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise PortabilityError(f"{source} is empty; it is not a personae memory export.")
    errors: list[str] = []
    first_number, first = numbered[0]
    try:
        header = Header.model_validate_json(first)
    except ValidationError as exc:
        raise PortabilityError(
            f"{source}:{first_number} is not a personae memory export header ({_describe(exc)})."
        ) from None
    if header.schema_version > SCHEMA_VERSION or header.schema_version < 1:
        raise PortabilityError(
            f"{source} has schema version {header.schema_version}; this personae reads "
            f"version {SCHEMA_VERSION}. Upgrade personae to import it."
        )
    batch = ImportBatch(kind="jsonl", source=source, files_read=1)
    for number, line in numbered[1:]:
        try:
            parsed = ItemLine.model_validate_json(line)
        except ValidationError as exc:
            errors.append(f"line {number}: {_describe(exc)}")
            continue
        where = f"{source}:{number}"
        cleaned, refused = screen_memory(parsed.text)
        if refused is not None:
            batch.problems.append(Problem(where, refused))
            continue
        batch.items.append(parsed.model_copy(update={"text": cleaned}).item(where))
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > 10 else ""
        raise PortabilityError(
            f"{source} has {len(errors)} invalid line(s), so nothing was imported: {shown}{more}"
        )
    return batch


def read_file(path: Path) -> ImportBatch:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PortabilityError(f"Cannot read {path}: {exc}") from None
    return parse_lines(text, str(path))
