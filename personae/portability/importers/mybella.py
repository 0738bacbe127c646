"""Reading a MyBella database (SQLite, written by its Flask-SQLAlchemy models).

- ``persona_profiles`` (name, display_name, description, personality_traits,
  communication_style, tagline, voice_id, is_custom, user_id, ...) become personas;
  a custom persona belongs to the imported user who made it. MyBella's own columns
  are kept under the card's ``extensions.mybella``.
- ``chat_messages`` (user_id, persona_id or the older persona name, role, content,
  timestamp, memory_id) become conversations: one per (persona, user, MyBella
  memory session), keyed ``mybella:<memory_id>`` (``mybella`` without one); the
  first ``messages`` table (with ``chats``) one per chat, ``mybella:chat:<id>``.
- ``user_preferences``, ``conversation_memories``, ``user_settings`` and
  ``onboarding_quiz`` become memory items
  (:mod:`~personae.portability.importers.mybella_memory`).

The persona of a row is its ``persona_id``, else its persona name. MyBella's
built-in default persona (``Isabella``; ``Unknown`` for a session without one)
is a name in its code, not always a row: without a ``persona_profiles`` row it
maps to personae's default persona (``--persona-map Isabella=ID`` chooses). Any
other name without a row is reported and skipped, with the ``--persona-map``
that imports it. Rows that name no persona go to one persona only (``persona``,
else the default persona), not to every persona, and the report says so.

Users are the personae users of identity ``("mybella", "<users.id>")``, named by
their MyBella nickname when they set one. The file is opened read-only. Whatever
is not imported is reported with a count per table and the reason, and the
tables not read at all (moods, wellness, subscriptions ...) with their row counts.
"""

from __future__ import annotations

import shlex
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from personae.core.cards import PersonaCard, slugify
from personae.portability.errors import PortabilityError
from personae.portability.importers import mybella_memory as memory
from personae.portability.importers.common import Report, map_persona, plural
from personae.portability.records import (
    ConversationIn,
    ImportBatch,
    MessageIn,
    PersonaIn,
    UserRef,
    parse_time,
)

PLATFORM = "mybella"
TABLES = ("persona_profiles", "chat_messages", "user_preferences", "conversation_memories")
BUILTIN_DEFAULTS = ("Isabella", "Unknown")
"""The persona names MyBella's code falls back to (``Chat.persona``,
``UserSettings.current_persona``, a session without a persona)."""
_ROLES = {"user": "user", "assistant": "assistant", "bot": "assistant", "ai": "assistant"}
_KEPT = (
    "id", "name", "communication_style", "tagline", "voice_settings", "voice_id",
    "custom_voice_url", "profile_picture", "is_custom", "is_active",
)  # fmt: skip
_MESSAGES = ("id", "user_id", "persona_id", "persona", "memory_id", "role", "content", "timestamp")
_OLD_MESSAGES = ("id", "user_id", "chat_id", "role", "content", "persona", "timestamp")
"""MyBella's first ``messages`` table (with ``chats``), before ``chat_messages``."""


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


def _read_tables(
    conn: sqlite3.Connection, path: Path
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """The rows of every table read, and the tables not read (with row counts)."""
    tables = {r["name"] for r in conn.execute("SELECT name FROM sqlite_master")}
    if not tables & set(TABLES):
        raise PortabilityError(f"{path} has none of MyBella's tables ({', '.join(TABLES)}).")
    wanted = {
        "users": ("id", "name"),
        "persona_profiles": (*_KEPT, "display_name", "description", "personality_traits",
                             "user_id"),
        "chat_messages": _MESSAGES,
        "user_preferences": memory.PREFERENCES,
        "conversation_memories": memory.MEMORIES,
        "user_settings": memory.SETTINGS,
        "onboarding_quiz": memory.QUIZ,
        "messages": _OLD_MESSAGES,
        "chats": ("id", "persona"),
    }  # fmt: skip
    rows = {table: _rows(conn, table, columns) for table, columns in wanted.items()}
    return rows, unread_tables(conn, set(wanted))


def read_mybella(
    path: Path,
    *,
    persona_map: Mapping[str, str] | None = None,
    default_persona: str = "sage",
    persona: str | None = None,
) -> ImportBatch:
    """Everything a MyBella SQLite database holds that personae can use.

    ``persona`` receives the rows that name no persona (default: ``default_persona``)."""
    path = Path(path)
    if persona is not None and slugify(persona) != persona:
        raise PortabilityError(
            f"--persona {persona!r} is not a persona id (lowercase letters, digits, '-', '_')."
        )
    mapping = dict(persona_map or {})
    batch = ImportBatch(kind="mybella", source=str(path), files_read=1)
    report = Report()
    source = str(path)
    with closing(_open(path)) as conn:
        try:
            rows, unread = _read_tables(conn, path)
        except sqlite3.DatabaseError as exc:
            raise PortabilityError(f"Cannot read {path}: {exc}") from None
    names = {row["id"]: row["name"] for row in rows["users"]}
    nicknames = {
        row["user_id"]: str(row["nickname"]).strip()
        for row in rows["user_settings"]
        if isinstance(row["nickname"], str) and row["nickname"].strip()
    }

    def user(user_id: Any) -> UserRef:
        name = nicknames.get(user_id) or names.get(user_id)
        return UserRef(((PLATFORM, str(user_id)),), name=name or f"{PLATFORM}:{user_id}")

    by_id, by_name, display = _personas(batch, report, source, rows["persona_profiles"],
                                        mapping, user)  # fmt: skip
    redirected: dict[tuple[str, str], int] = {}
    unknown: dict[tuple[str, str], list[str]] = {}

    def persona_of(row: dict[str, Any], table: str) -> str | None:
        if row["persona_id"] is not None and row["persona_id"] in by_id:
            return by_id[row["persona_id"]]
        name = row.get("persona")
        label = f"#{row['id']}"
        if not isinstance(name, str) or not name.strip():
            reason = (
                f"unknown persona id {row['persona_id']}"
                if row["persona_id"] is not None
                else "no persona is recorded for it"
            )
            report.skip(source, f"row of table {table}", reason, label)
            return None
        name = name.strip()
        if name.lower() in by_name:
            return by_name[name.lower()]
        if name in mapping:
            return mapping[name]
        if name.lower() in {n.lower() for n in BUILTIN_DEFAULTS}:
            redirected[(table, name)] = redirected.get((table, name), 0) + 1
            return default_persona
        unknown.setdefault((table, name), []).append(label)
        return None

    unscoped_target = persona or default_persona
    unscoped: dict[str, int] = {}

    def unscoped_persona(table: str) -> str:
        unscoped[table] = unscoped.get(table, 0) + 1
        return unscoped_target

    _messages(batch, report, source, rows["chat_messages"], persona_of, user)
    chats = {row["id"]: row["persona"] for row in rows["chats"]}
    old = [
        {**row, "persona_id": None, "persona": row["persona"] or chats.get(row["chat_id"])}
        for row in rows["messages"]
    ]
    _messages(batch, report, source, old, persona_of, user, "messages")
    ctx = memory.Context(source, report, batch.items, user, persona_of, unscoped_persona)
    memory.read_preferences(ctx, rows["user_preferences"])
    memory.read_memories(ctx, rows["conversation_memories"])
    memory.read_settings(ctx, rows["user_settings"])
    memory.read_onboarding(ctx, rows["onboarding_quiz"], display)
    for (table, name), labels in unknown.items():
        for label in labels:
            report.skip(
                source, f"row of table {table}",
                f"its persona {name!r} is not in persona_profiles; import it with "
                f"--persona-map {shlex.quote(name + '=PERSONA_ID')}",
                label,
            )  # fmt: skip
    for (table, name), count in redirected.items():
        report.note(
            source,
            f"{plural(count, 'row')} of table {table} {'is' if count == 1 else 'are'} for "
            f"{name!r}, MyBella's built-in default "
            f"persona, which has no persona_profiles row: imported under personae's default "
            f"persona {default_persona!r} (--persona-map {shlex.quote(name + '=PERSONA_ID')} "
            "chooses another)",
        )
    for table, count in unscoped.items():
        hint = "" if persona else " (--persona PERSONA_ID chooses another)"
        report.note(
            source,
            f"{plural(count, 'row')} of table {table} {'names' if count == 1 else 'name'} no "
            "persona (MyBella shared them with every "
            f"persona): imported once, to persona {unscoped_target!r}{hint}",
        )
    if unread:
        report.note(source, f"tables personae has no place for, not imported: {', '.join(unread)}")
    batch.problems.extend(report.problems())
    return batch


def _personas(
    batch: ImportBatch, report: Report, source: str, rows: list[dict[str, Any]],
    mapping: Mapping[str, str], user: Any,
) -> tuple[dict[Any, str], dict[str, str], dict[Any, str]]:  # fmt: skip
    """Personas from ``persona_profiles``: ids by MyBella id and by lowercase name,
    and display names by MyBella id."""
    by_id: dict[Any, str] = {}
    by_name: dict[str, str] = {}
    display: dict[Any, str] = {}
    for row in rows:
        label = f"#{row['id']}"
        if not isinstance(row["name"], str) or not row["name"].strip():
            report.skip(source, "row of table persona_profiles", "the persona has no name", label)
            continue
        persona_id = map_persona(row["name"].strip(), mapping)
        by_id[row["id"]] = by_name[row["name"].strip().lower()] = persona_id
        display[row["id"]] = row["display_name"] or row["name"]
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
            reason = f"not a usable persona: {exc.errors()[0]['msg']}"
            report.skip(source, "row of table persona_profiles", reason, label)
            continue
        custom = bool(row["is_custom"]) and row["user_id"] is not None
        owner = user(row["user_id"]) if custom else None
        batch.personas.append(PersonaIn(card, f"{source}:persona_profiles#{row['id']}", owner))
    return by_id, by_name, display


def _messages(
    batch: ImportBatch, report: Report, source: str, rows: list[dict[str, Any]],
    persona_of: Any, user: Any, table: str = "chat_messages",
) -> None:  # fmt: skip
    """Conversations from ``chat_messages`` (one per MyBella memory session,
    ``mybella:<memory_id>``) or from the older ``messages`` table (one per chat,
    ``mybella:chat:<chat_id>``)."""
    threads: dict[tuple[str, Any, str], list[MessageIn]] = {}
    for row in rows:
        label = f"#{row['id']}"
        role = _ROLES.get(str(row["role"] or "").strip().lower())
        if role is None:
            report.skip(source, f"row of table {table}", f"unknown role {row['role']!r}", label)
        elif row["user_id"] is None:
            report.skip(source, f"row of table {table}", "no user is recorded for it", label)
        elif not isinstance(row["content"], str) or not row["content"].strip():
            report.skip(source, f"row of table {table}", "empty message", label)
        else:
            target = persona_of(row, table)
            if target is None:
                continue
            if table == "messages":
                chat = row["chat_id"]
                key = f"{PLATFORM}:chat:{chat}" if chat is not None else f"{PLATFORM}:chat"
            else:
                memory_id = row["memory_id"]
                key = f"{PLATFORM}:{memory_id}" if memory_id is not None else PLATFORM
            message = MessageIn(role, row["content"], parse_time(row["timestamp"]))
            threads.setdefault((target, row["user_id"], key), []).append(message)
    for (persona_id, user_id, key), thread in threads.items():
        batch.conversations.append(
            ConversationIn(persona_id, user(user_id), key, f"{source}:{table}", tuple(thread))
        )


def unread_tables(conn: sqlite3.Connection, read: set[str]) -> list[str]:
    """``name (N rows)`` for every table of the database this importer does not read."""
    names = [
        r["name"]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if r["name"] not in read and not r["name"].startswith(("sqlite_", "alembic_"))
    ]
    found = []
    for name in names:
        count = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        if count:
            found.append(f"{name} ({count} rows)")
    return found
