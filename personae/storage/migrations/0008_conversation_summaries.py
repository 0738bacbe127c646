"""Rolling summaries of what fell out of the model's window, per conversation.

A conversation's history is trimmed in blocks to fit the model's context window;
each block that falls out is folded into a summary kept here (keyed like the
conversation: persona, user, conversation key) and placed in later prompts.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("personae", "0006_recall_index")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ConversationSummary",
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
                        related_name="conversation_summaries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("conversation", fields.CharField(max_length=191)),
                ("through_id", fields.BigIntField()),
                ("text", fields.TextField(unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "conversation_summaries",
                "app": "personae",
                "indexes": [
                    Index(fields=["persona_id", "user_id", "conversation", "through_id"])
                ],
                "pk_attr": "id",
                "table_description": (
                    "A rolling summary of the part of a conversation that fell out of "
                    "the model's window."
                ),
            },
            bases=["Model"],
        ),
    ]
