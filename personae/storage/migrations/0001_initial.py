from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="User",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(max_length=100)),
                ("is_admin", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "users",
                "app": "personae",
                "pk_attr": "id",
                "table_description": "A person, across every platform they reach personae from.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Conversation",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("persona_id", fields.CharField(max_length=64)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "personae.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="conversations",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("key", fields.CharField(max_length=191)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "conversations",
                "app": "personae",
                "unique_together": (("persona_id", "user_id", "key"),),
                "pk_attr": "id",
                "table_description": "One thread of talk between a user and a persona, keyed by the adapter.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Identity",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "personae.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="identities",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("platform", fields.CharField(max_length=32)),
                ("external_id", fields.CharField(max_length=191)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "identities",
                "app": "personae",
                "unique_together": (("platform", "external_id"),),
                "pk_attr": "id",
                "table_description": "A user's identity on one platform (``cli``/``web``/``discord`` + external id).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MemoryItem",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("persona_id", fields.CharField(max_length=64)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "personae.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="memory_items",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("kind", fields.CharField(default="fact", max_length=32)),
                ("text", fields.TextField(unique=False)),
                ("confidence", fields.FloatField(default=0.8)),
                (
                    "source_message_ids",
                    fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "memory_items",
                "app": "personae",
                "indexes": [Index(fields=["persona_id", "user_id", "updated_at"])],
                "pk_attr": "id",
                "table_description": "Something a persona remembers about a user.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Message",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "conversation",
                    fields.ForeignKeyField(
                        "personae.Conversation",
                        source_field="conversation_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="messages",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("persona_id", fields.CharField(max_length=64)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "personae.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="messages",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("role", fields.CharField(max_length=16)),
                ("content", fields.TextField(unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "messages",
                "app": "personae",
                "indexes": [Index(fields=["persona_id", "user_id", "conversation_id", "id"])],
                "pk_attr": "id",
                "table_description": "One stored message of a conversation.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Persona",
            fields=[
                (
                    "id",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                (
                    "owner",
                    fields.ForeignKeyField(
                        "personae.User",
                        source_field="owner_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="personas",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("card", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ("shared", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "personas",
                "app": "personae",
                "pk_attr": "id",
                "table_description": "A persona stored in the database (imported or custom). Built-in and",
            },
            bases=["Model"],
        ),
    ]
