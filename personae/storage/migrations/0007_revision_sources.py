"""A memory revision names the messages behind it: ``source_message_ids``.

A ``merge`` revision records a note that consolidation folded into an existing
item (a duplicate or a vaguer restatement of it); the messages the note came from
are credited to the item, and the revision says which they were, so the item's
history shows what was merged into it and from where. Older revisions keep NULL.
"""

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("personae", "0006_recall_index")]

    initial = False

    operations = [
        ops.AddField(
            model_name="MemoryRevision",
            name="source_message_ids",
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
    ]
