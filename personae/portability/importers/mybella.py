"""Reading a MyBella database (SQLite, written by its Flask-SQLAlchemy models).

- ``persona_profiles`` (name, display_name, description, personality_traits,
  communication_style, tagline, voice_id, is_custom, user_id, ...) become personas;
  a custom persona belongs to the imported user who made it. MyBella's own columns
  are kept under the card's ``extensions.mybella``.
- ``chat_messages`` (user_id, persona_id or the older persona name, role, content,
  timestamp, memory_id) become conversations: one per (persona, user, MyBella
  memory session), keyed ``mybella:<memory_id>`` (``mybella`` without one).
- ``user_preferences`` (user_id, persona_id, category, key, value, confidence)
  become memory items; a preference without a persona (from before MyBella
  isolated personas) goes to every persona the user talked to.

Users are the personae users of identity ``("mybella", "<users.id>")``. The file is
opened read-only; rows that cannot be imported are reported and skipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from personae.core.cards import PersonaCard
from personae.portability.errors import PortabilityError
from personae.portability.importers.common import humanize, map_persona, screen
from personae.portability.records import (
    ConversationIn,
    ImportBatch,
    ItemIn,
    MessageIn,
    PersonaIn,
    Problem,
    UserRef,
    parse_time,
)

PLATFORM = "mybella"
TABLES = ("persona_profiles", "chat_messages", "user_preferences")
_ROLES = {"user": "user", "assistant": "assistant", "bot": "assistant", "ai": "assistant"}
_INTEREST_CATEGORIES = {"interest", "interests", "topic", "topics"}
_KEPT = (
    "id", "name", "communication_style", "tagline", "voice_settings", "voice_id",
    "custom_voice_url", "profile_picture", "is_custom", "is_active",
)  # fmt: skip


def _open(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise PortabilityError(f"There is no MyBella database at {path}.")
    try:
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise PortabilityError(f"{path} is not a readable SQLite database: {exc}") from None
    return conn


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row["name"] for row in conn.execute(f'PRAGMA table_info("{table}")')}


def _rows(conn: sqlite3.Connection, table: str, wanted: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of ``table`` with the wanted columns it has (None for the others)."""
    present = _columns(conn, table)
    if not present:
        return []
    chosen = ", ".join(f'"{c}"' for c in wanted if c in present)
    query = f'SELECT {chosen} FROM "{table}" ORDER BY "id"'
    return [{c: row[c] if c in present else None for c in wanted} for row in conn.execute(query)]


def read_mybella(path: Path, *, persona_map: Mapping[str, str] | None = None) -> ImportBatch:
    """Everything a MyBella SQLite database holds that personae can use."""
    path = Path(path)
    mapping = dict(persona_map or {})
    batch = ImportBatch(kind="mybella", source=str(path), files_read=1)
    with closing(_open(path)) as conn:
        try:
            tables = {r["name"] for r in conn.execute("SELECT name FROM sqlite_master")}
            if not tables & set(TABLES):
                raise PortabilityError(
                    f"{path} has none of MyBella's tables ({', '.join(TABLES)})."
                )
            users = {row["id"]: row["name"] for row in _rows(conn, "users", ("id", "name"))}
            personas = _rows(
                conn,
                "persona_profiles",
                (*_KEPT, "display_name", "description", "personality_traits", "user_id"),
            )
            messages = _rows(
                conn,
                "chat_messages",
                (
                    "id",
                    "user_id",
                    "persona_id",
                    "persona",
                    "memory_id",
                    "role",
                    "content",
                    "timestamp",
                ),
            )
            preferences = _rows(
                conn,
                "user_preferences",
                (
                    "id",
                    "user_id",
                    "persona_id",
                    "category",
                    "key",
                    "value",
                    "confidence",
                    "first_observed",
                ),
            )
        except sqlite3.DatabaseError as exc:
            raise PortabilityError(f"Cannot read {path}: {exc}") from None

    def user(user_id: Any) -> UserRef:
        name = users.get(user_id)
        return UserRef(((PLATFORM, str(user_id)),), name=name or f"{PLATFORM}:{user_id}")

    by_id: dict[Any, str] = {}
    by_name: dict[str, str] = {}
    for row in personas:
        where = f"{path}:persona_profiles#{row['id']}"
        if not isinstance(row["name"], str) or not row["name"].strip():
            batch.problems.append(Problem(where, "the persona has no name; skipped"))
            continue
        persona_id = map_persona(row["name"], mapping)
        by_id[row["id"]] = by_name[row["name"].strip().lower()] = persona_id
        try:
            card = PersonaCard(
                id=persona_id,
                name=row["display_name"] or row["name"],
                description=row["description"] or "",
                personality=row["personality_traits"] or "",
                creator_notes=row["tagline"] or "",
                tags=["mybella", *(["custom"] if row["is_custom"] else [])],
                extensions={"mybella": {k: row[k] for k in _KEPT if row[k] is not None}},
            )
        except ValidationError as exc:
            batch.problems.append(Problem(where, f"not a usable persona: {exc.errors()[0]['msg']}"))
            continue
        custom = bool(row["is_custom"]) and row["user_id"] is not None
        batch.personas.append(
            PersonaIn(card, where, owner=user(row["user_id"]) if custom else None)
        )

    def persona_of(row: dict[str, Any]) -> str | None:
        if row["persona_id"] is not None and row["persona_id"] in by_id:
            return by_id[row["persona_id"]]
        name = row.get("persona")
        if isinstance(name, str) and name.strip():
            return by_name.get(name.strip().lower()) or map_persona(name.strip(), mapping)
        return None

    talked: dict[Any, list[str]] = {}
    threads: dict[tuple[str, Any, Any], list[MessageIn]] = {}
    for row in messages:
        where = f"{path}:chat_messages#{row['id']}"
        target = persona_of(row)
        role = _ROLES.get(str(row["role"] or "").strip().lower())
        if target is None:
            batch.problems.append(Problem(where, "no persona is recorded for the message"))
        elif role is None:
            batch.problems.append(Problem(where, f"unknown role {row['role']!r}"))
        elif row["user_id"] is None:
            batch.problems.append(Problem(where, "no user is recorded for the message"))
        elif not isinstance(row["content"], str) or not row["content"].strip():
            batch.problems.append(Problem(where, "empty message"))
        else:
            message = MessageIn(role, row["content"], parse_time(row["timestamp"]))
            threads.setdefault((target, row["user_id"], row["memory_id"]), []).append(message)
            seen = talked.setdefault(row["user_id"], [])
            if target not in seen:
                seen.append(target)
    for (persona_id, user_id, memory_id), thread in threads.items():
        name = f"{PLATFORM}:{memory_id}" if memory_id is not None else PLATFORM
        batch.conversations.append(
            ConversationIn(persona_id, user(user_id), name, f"{path}:chat_messages", tuple(thread))
        )

    for row in preferences:
        where = f"{path}:user_preferences#{row['id']}"
        value = row["value"]
        if row["user_id"] is None or value is None or not str(value).strip():
            batch.problems.append(Problem(where, "no user or no value; skipped"))
            continue
        category = str(row["category"] or "").strip().lower()
        kind = "interest" if category in _INTEREST_CATEGORIES else "preference"
        text, refused = screen(f"{humanize(str(row['key'] or category))}: {value}")
        if refused:
            batch.problems.append(Problem(where, f"skipped: {refused}"))
            continue
        try:
            confidence = min(1.0, max(0.0, float(row["confidence"])))
        except (TypeError, ValueError):
            confidence = 0.8
        targets: list[str] = talked.get(row["user_id"], [])
        if row["persona_id"] is not None:
            owner = by_id.get(row["persona_id"])
            if owner is None:
                batch.problems.append(Problem(where, f"unknown persona id {row['persona_id']}"))
                continue
            targets = [owner]
        if not targets:
            batch.problems.append(Problem(where, "no persona to attach the preference to"))
            continue
        for persona_id in targets:
            batch.items.append(
                ItemIn(persona_id, user(row["user_id"]), kind, text, where, confidence,
                       parse_time(row["first_observed"]))
            )  # fmt: skip
    return batch
