"""Tortoise ORM models. Every table that holds memory or history carries
``persona_id`` and ``user_id`` and its indexes lead with them.

Code outside ``personae.storage`` never queries these models directly: it goes
through the scoped stores in :mod:`personae.storage.stores`.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class User(Model):
    """A person, across every platform they reach personae from."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    is_admin = fields.BooleanField(default=False)
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
    card = fields.JSONField()
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
    source_message_ids = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "memory_items"
        indexes = (Index(fields=("persona_id", "user_id", "updated_at")),)
