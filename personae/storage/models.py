"""Tortoise ORM models. Every table that holds memory or history carries
``persona_id`` and ``user_id`` and its indexes lead with them.

Code outside ``personae.storage`` never queries these models directly: it goes
through the scoped stores in :mod:`personae.storage.stores`.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class User(Model):
    """A person, across every platform they reach personae from."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    is_admin = fields.BooleanField(default=False)
    username = fields.CharField(max_length=64, unique=True, null=True)
    """Login name for the web service; None for users known only from a platform."""
    password_hash = fields.CharField(max_length=255, null=True)
    current_persona = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    identities: fields.ReverseRelation[Identity]

    class Meta:
        table = "users"


class Identity(Model):
    """A user's identity on one platform (``cli``/``web``/``discord`` + external id)."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="identities", on_delete=fields.CASCADE
    )
    platform = fields.CharField(max_length=32)
    external_id = fields.CharField(max_length=191)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "identities"
        unique_together = (("platform", "external_id"),)


class Persona(Model):
    """A persona stored in the database (imported or custom). Built-in and
    config-folder personas live in card files and are not stored here."""

    id = fields.CharField(max_length=64, primary_key=True)
    owner: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="personas", null=True, on_delete=fields.CASCADE
    )
    card: dict[str, Any] = fields.JSONField()
    shared = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "personas"


class Conversation(Model):
    """One thread of talk between a user and a persona, keyed by the adapter."""

    id = fields.IntField(primary_key=True)
    persona_id = fields.CharField(max_length=64)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="conversations", on_delete=fields.CASCADE
    )
    key = fields.CharField(max_length=191)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "conversations"
        unique_together = (("persona_id", "user_id", "key"),)


class Message(Model):
    """One stored message of a conversation."""

    id = fields.BigIntField(primary_key=True)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "personae.Conversation", related_name="messages", on_delete=fields.CASCADE
    )
    persona_id = fields.CharField(max_length=64)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="messages", on_delete=fields.CASCADE
    )
    role = fields.CharField(max_length=16)
    content = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "messages"
        indexes = (Index(fields=("persona_id", "user_id", "conversation_id", "id")),)


class MemoryItem(Model):
    """Something a persona remembers about a user."""

    id = fields.BigIntField(primary_key=True)
    persona_id = fields.CharField(max_length=64)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="memory_items", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=32, default="fact")
    text = fields.TextField()
    confidence = fields.FloatField(default=0.8)
    source_message_ids: list[int] = fields.JSONField(default=list)
    uses = fields.IntField(default=0)
    """How often the item reached a prompt; eviction drops the least useful first."""
    last_used_at = fields.DatetimeField(null=True)
    embedding: list[float] | None = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "memory_items"
        indexes = (Index(fields=("persona_id", "user_id", "updated_at")),)


class MemoryVersion(Model):
    """How often a user's memory items have changed.

    Database triggers on ``memory_items`` (migration 0005) move it on every
    insert, delete and change of what recall reads (not on use counts), whoever
    writes: this process, another one, an import. Recall reuses a user's
    candidate rows while it stays the same. The row outlives the user's items,
    so it never counts from 0 again."""

    user_id = fields.IntField(primary_key=True, generated=False)
    version = fields.BigIntField(default=0)

    class Meta:
        table = "memory_versions"


class MemoryRevision(Model):
    """A change to a memory item: its text before and after, and the message
    that caused it. Retired (contradicted) items live on here."""

    id = fields.BigIntField(primary_key=True)
    item_id = fields.BigIntField()
    persona_id = fields.CharField(max_length=64)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="memory_revisions", on_delete=fields.CASCADE
    )
    action = fields.CharField(max_length=16)  # "update" | "retire" | "delete"
    kind = fields.CharField(max_length=32)
    old_text = fields.TextField()
    new_text = fields.TextField(null=True)
    message_id = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "memory_revisions"
        indexes = (Index(fields=("persona_id", "user_id", "created_at")),)


class FollowUp(Model):
    """A curiosity follow-up question a persona wants to ask a user."""

    id = fields.BigIntField(primary_key=True)
    persona_id = fields.CharField(max_length=64)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="follow_ups", on_delete=fields.CASCADE
    )
    conversation = fields.CharField(max_length=191)
    platform = fields.CharField(max_length=32)
    topic = fields.CharField(max_length=200)
    question = fields.TextField()
    status = fields.CharField(max_length=16, default="pending")  # pending|sent|cancelled
    due_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "follow_ups"
        indexes = (
            Index(fields=("persona_id", "user_id", "created_at")),
            Index(fields=("status", "due_at")),
        )


class ApiToken(Model):
    """A bearer token a user created for API clients. Only its hash is stored."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="api_tokens", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=100)
    token_hash = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=16)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_tokens"


class WebSession(Model):
    """A browser login session. Only the cookie value's hash is stored."""

    id = fields.CharField(max_length=64, primary_key=True)  # sha256 of the cookie value
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="web_sessions", on_delete=fields.CASCADE
    )
    csrf_token = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "web_sessions"


class LinkCode(Model):
    """A one-time code that links a platform identity to a web account."""

    code_hash = fields.CharField(max_length=64, primary_key=True)
    platform = fields.CharField(max_length=32)
    external_id = fields.CharField(max_length=191)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "link_codes"


class PluginState(Model):
    """A small JSON value a plugin keeps per scope (``runtime.plugin_state``)."""

    id = fields.BigIntField(primary_key=True)
    plugin = fields.CharField(max_length=64)
    persona_id = fields.CharField(max_length=64)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="plugin_state", on_delete=fields.CASCADE
    )
    key = fields.CharField(max_length=100)
    value: Any = fields.JSONField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "plugin_state"
        unique_together = (("persona_id", "user_id", "plugin", "key"),)


class VoiceSample(Model):
    """A voice sample a persona's owner uploaded (the file lives under the data dir)."""

    id = fields.IntField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="voice_samples", on_delete=fields.CASCADE
    )
    persona_id = fields.CharField(max_length=64)
    filename = fields.CharField(max_length=128)  # random name under <data_dir>/voices
    content_type = fields.CharField(max_length=64)
    size = fields.IntField()
    duration = fields.FloatField()
    cloned_voice_id = fields.CharField(max_length=128, null=True)  # e.g. an ElevenLabs id
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "voice_samples"
        indexes = (Index(fields=("persona_id", "owner_id")),)


class VoiceUsage(Model):
    """Seconds of speech synthesised for a user on one day (for the daily quota)."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="voice_usage", on_delete=fields.CASCADE
    )
    day = fields.DateField()
    seconds = fields.FloatField(default=0.0)

    class Meta:
        table = "voice_usage"
        unique_together = (("user_id", "day"),)


class ConversationSummary(Model):
    """A rolling summary of the part of a conversation that fell out of the
    model's window: everything up to message ``through_id``. A conversation keeps
    its last two (the one in use and the one prepared for the next block)."""

    id = fields.BigIntField(primary_key=True)
    persona_id = fields.CharField(max_length=64)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "personae.User", related_name="conversation_summaries", on_delete=fields.CASCADE
    )
    conversation = fields.CharField(max_length=191)
    through_id = fields.BigIntField()
    text = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "conversation_summaries"
        indexes = (Index(fields=("persona_id", "user_id", "conversation", "through_id")),)
