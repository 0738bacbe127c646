"""Deleting what a persona or an account leaves in the database.

The plugins' ``forget_user`` hooks delete what each of them stores (the data
contract); these functions find whom a persona's deletion concerns and remove
the rows no plugin owns: the account itself, its identities, tokens, sessions,
link codes and custom personas, and the memory version counter. They run after
the plugins have forgotten the user, and sweep up what a plugin left.
"""

from __future__ import annotations

from tortoise.transactions import in_transaction

from personae.storage import connections
from personae.storage.models import (
    ApiToken,
    Conversation,
    ConversationSummary,
    FollowUp,
    Identity,
    LinkCode,
    MemoryItem,
    MemoryRevision,
    MemoryVersion,
    Message,
    Persona,
    PluginState,
    User,
    VoiceSample,
    VoiceUsage,
    WebSession,
)

_PERSONA_TABLES = (
    ("messages", "user_id"),
    ("conversations", "user_id"),
    ("conversation_summaries", "user_id"),
    ("memory_items", "user_id"),
    ("memory_revisions", "user_id"),
    ("follow_ups", "user_id"),
    ("plugin_state", "user_id"),
    ("voice_samples", "owner_id"),
)
"""Every table that stores rows under a persona key, with its user column."""

_SCOPED = (Message, Conversation, ConversationSummary, MemoryRevision, FollowUp, PluginState)
"""The models with a (persona key, user) scope that plain deletes clear; memory items
(counted apart: their triggers) and voice samples (keyed by owner) come separately."""


async def users_with_rows(persona_key: str) -> list[int]:
    """The users who have anything stored under a persona key."""
    union = " UNION ".join(
        f"SELECT {user} FROM {table} WHERE persona_id = ?" for table, user in _PERSONA_TABLES
    )
    rows = await connections.fetch(union, [persona_key] * len(_PERSONA_TABLES))
    return sorted({int(user_id) for (user_id,) in rows})


async def persona_rows(persona_key: str) -> int:
    """Delete every row still stored under a persona key (what no plugin's
    ``forget_user`` removed); returns how many."""
    count = 0
    async with in_transaction("default") as conn:
        for model in (*_SCOPED, MemoryItem, VoiceSample):
            count += await model.filter(persona_id=persona_key).using_db(conn).delete()
    return count


async def user_rows(user_id: int, persona_key: str | None = None) -> int:
    """Delete the user's memory, history, follow-ups and plugin state still stored
    (for one persona key, or all) after the plugins forgot the user: the rows of a
    plugin that is not loaded now. Returns how many."""
    filters: dict[str, object] = {"user_id": user_id}
    if persona_key is not None:
        filters["persona_id"] = persona_key
    count = 0
    async with in_transaction("default") as conn:
        for model in _SCOPED:
            count += await model.filter(**filters).using_db(conn).delete()
        items = MemoryItem.filter(**filters).using_db(conn)
        count += await items.count()  # on SQLite a DELETE's count includes trigger writes
        await items.delete()
    return count


async def account_rows(user_id: int) -> int:
    """Delete the account and every row that names it, in one transaction: its
    identities and their link codes, tokens, sessions, custom personas, and what
    the plugins should already have forgotten. Returns how many rows went."""
    count = 0
    async with in_transaction("default") as conn:
        identities = await Identity.filter(user_id=user_id).using_db(conn)
        for identity in identities:
            count += (
                await LinkCode.filter(platform=identity.platform, external_id=identity.external_id)
                .using_db(conn)
                .delete()
            )
        for model in (
            *_SCOPED,
            VoiceUsage,
            Identity,
            ApiToken,
            WebSession,
        ):
            count += await model.filter(user_id=user_id).using_db(conn).delete()
        # Counted first: on SQLite a DELETE's change count includes trigger writes.
        items = MemoryItem.filter(user_id=user_id).using_db(conn)
        count += await items.count()
        await items.delete()
        count += await VoiceSample.filter(owner_id=user_id).using_db(conn).delete()
        count += await Persona.filter(owner_id=user_id).using_db(conn).delete()
        # Last: deleting memory items moves the counter (database triggers).
        count += await MemoryVersion.filter(user_id=user_id).using_db(conn).delete()
        count += await User.filter(id=user_id).using_db(conn).delete()
    return count
