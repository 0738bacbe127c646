"""One-time link codes: the same person, the same memory, on Discord and on the web.

On Discord, ``/link`` calls :meth:`LinkCodes.create` and shows the code privately.
The person types it into the web UI, whose handler calls :meth:`LinkCodes.redeem`
with the logged-in user's id::

    from personae.adapters.discord.linking import LinkCodeError, LinkCodes

    try:
        result = await LinkCodes().redeem(code, user_id=web_user_id)
    except LinkCodeError as error:
        ...  # 400 with str(error): wrong, expired or already used code

Codes are random (8 characters from an unambiguous alphabet, shown as
``ABCD-EFGH``), stored only as a SHA-256 hash, expire after 10 minutes and work
once. Redeeming merges the platform-only user into the web user in one
transaction: identities, conversations with their messages, memory items and
revisions, follow-ups, plugin state and owned personas are re-pointed to the web
user, and the platform-only user is deleted. Where both users hold a row with the
same unique key (a conversation of the same persona in the same channel, a plugin
state key), conversations are joined and the newer plugin value wins.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.fields.relational import ForeignKeyFieldInstance
from tortoise.transactions import in_transaction

from personae.core.clock import Clock
from personae.core.errors import PersonaeError
from personae.storage.models import (
    ApiToken,
    Conversation,
    Identity,
    LinkCode,
    Message,
    PluginState,
    User,
    WebSession,
)

log = logging.getLogger("personae.discord.linking")

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
CODE_LIFETIME = timedelta(minutes=10)


class LinkCodeError(PersonaeError):
    """The user sees why the code was not accepted and what to do next."""


@dataclass(frozen=True, slots=True)
class LinkResult:
    """What :meth:`LinkCodes.redeem` did."""

    platform: str
    external_id: str
    user_id: int
    """The web user the identity now belongs to."""
    merged_user_id: int | None = None
    """The platform-only user whose data moved over and who no longer exists."""
    moved: dict[str, int] = field(default_factory=dict)
    """Rows re-pointed, per table."""


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_code(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def _format(raw: str) -> str:
    return f"{raw[:4]}-{raw[4:]}"


class LinkCodes:
    """Creates and redeems link codes over the ``link_codes`` table."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()

    async def create(self, platform: str, external_id: str) -> str:
        """A fresh code for a platform identity (``"discord"``, the user's snowflake).
        Earlier codes of the same identity and every expired code stop working."""
        now = self.clock.now()
        raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        async with in_transaction("default") as conn:
            await LinkCode.filter(expires_at__lte=now).using_db(conn).delete()
            await (
                LinkCode.filter(platform=platform, external_id=external_id).using_db(conn).delete()
            )
            await LinkCode.create(
                code_hash=hash_code(raw),
                platform=platform,
                external_id=external_id,
                expires_at=now + CODE_LIFETIME,
                using_db=conn,
            )
        return _format(raw)

    async def redeem(self, code: str, user_id: int) -> LinkResult:
        """Link the code's identity to ``user_id`` (the web user) and move the data
        of the identity's previous, platform-only user to it. Raises
        :class:`LinkCodeError` for an unknown, expired or used code, an unknown
        user, or an identity already linked to another account with a login."""
        digest = hash_code(code)
        async with in_transaction("default") as conn:
            row = await LinkCode.filter(code_hash=digest).using_db(conn).first()
            if row is None or row.expires_at <= self.clock.now():
                raise LinkCodeError(
                    "That link code is wrong or has expired. Type /link on Discord for a new one."
                )
            if await LinkCode.filter(code_hash=digest).using_db(conn).delete() != 1:
                raise LinkCodeError("That link code was just used. Type /link for a new one.")
            target = await User.filter(id=user_id).using_db(conn).first()
            if target is None:
                raise LinkCodeError("Your account no longer exists; sign in again.")
            identity = (
                await Identity.filter(platform=row.platform, external_id=row.external_id)
                .using_db(conn)
                .first()
            )
            source_id: int | None = identity.user_id if identity else None  # type: ignore[attr-defined]
            if identity is None:
                await Identity.create(
                    user_id=user_id,
                    platform=row.platform,
                    external_id=row.external_id,
                    using_db=conn,
                )
                return LinkResult(row.platform, row.external_id, user_id)
            if source_id == user_id:
                return LinkResult(row.platform, row.external_id, user_id)
            source = await User.filter(id=source_id).using_db(conn).first()
            if source is not None and source.username:
                raise LinkCodeError(
                    f"This {row.platform} account is already linked to the web account "
                    f"{source.username!r}. Sign in there to use it, or forget it there first."
                )
            assert source_id is not None
            moved = await merge_users(source_id, user_id, conn)
        log.info(
            "linked %s:%s to user %s (merged user %s: %s)",
            row.platform,
            row.external_id,
            user_id,
            source_id,
            moved,
        )
        return LinkResult(row.platform, row.external_id, user_id, source_id, moved)


async def merge_users(source_id: int, target_id: int, conn: BaseDBAsyncClient) -> dict[str, int]:
    """Move everything of user ``source_id`` to ``target_id`` and delete the source,
    inside the caller's transaction ``conn``. Returns the rows moved per table."""
    moved: dict[str, int] = {}

    # Conversations: join those both users have (same persona, same key).
    joined = 0
    for conversation in await Conversation.filter(user_id=source_id).using_db(conn):
        twin = (
            await Conversation.filter(
                user_id=target_id, persona_id=conversation.persona_id, key=conversation.key
            )
            .using_db(conn)
            .first()
        )
        if twin is None:
            continue
        await (
            Message.filter(conversation_id=conversation.id)
            .using_db(conn)
            .update(conversation_id=twin.id)
        )
        await Conversation.filter(id=conversation.id).using_db(conn).delete()
        joined += 1
    if joined:
        moved["conversations_joined"] = joined

    # Plugin state: on the same (persona, plugin, key) the newer value wins.
    for state in await PluginState.filter(user_id=source_id).using_db(conn):
        twin_state = (
            await PluginState.filter(
                user_id=target_id, persona_id=state.persona_id, plugin=state.plugin, key=state.key
            )
            .using_db(conn)
            .first()
        )
        if twin_state is None:
            continue
        if state.updated_at > twin_state.updated_at:
            twin_state.value = state.value  # save(), not update(): a str value stays JSON
            await twin_state.save(using_db=conn, update_fields=["value"])
        await PluginState.filter(id=state.id).using_db(conn).delete()

    # Login material of the source is never handed over.
    await WebSession.filter(user_id=source_id).using_db(conn).delete()
    await ApiToken.filter(user_id=source_id).using_db(conn).delete()

    # Every other row that points at the source user now points at the target.
    for model, column in _user_references():
        if model is User:
            continue
        count = (
            await model.filter(**{column: source_id}).using_db(conn).update(**{column: target_id})
        )
        if count:
            moved[model._meta.db_table] = moved.get(model._meta.db_table, 0) + count
    await User.filter(id=source_id).using_db(conn).delete()
    return moved


def _user_references() -> list[tuple[Any, str]]:
    """(model, ``<fk>_id`` column) for every foreign key to :class:`User`, in every
    registered model, including tables added after this module was written."""
    references: list[tuple[Any, str]] = []
    for models in Tortoise.apps.values():
        for model in models.values():
            for name in model._meta.fk_fields:
                field_ = model._meta.fields_map[name]
                if isinstance(field_, ForeignKeyFieldInstance) and field_.related_model is User:
                    references.append((model, field_.source_field or f"{name}_id"))
    return references
