"""On SQLite, an index that holds every column recall reads of a memory item.

Recall's candidates are a user's most recently updated items in one or a few
personas: 200 rows when the user is busy. Items are stored in the order they
were written, so one user's items lie on as many table pages as there are items,
and a cold read of 200 of them read 200 pages. In this index the same rows lie
side by side, in the order recall wants them, and the read never touches the
table (``bench/recall.py`` at 1M items: the candidate query's p50 went from 0.71
to 0.30 ms and its p99 from 2.4 to 0.7 ms). The price is the items' text stored
twice: the memory table takes about 75% more space.

PostgreSQL is left as it is: a B-tree entry there may not exceed about 2.7 kB,
and an item's text may be longer.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

NAME = "idx_memory_items_recall"
COLUMNS = (
    "persona_id, user_id, updated_at, id, kind, text, confidence, source_message_ids, created_at"
)
"""The candidates' condition and order first (persona, user, updated_at, id), then
the rest of what recall reads (``personae.storage.recall.ROW_COLUMNS``)."""


async def create_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.client.capabilities.dialect == "sqlite":
        await schema_editor.client.execute_script(
            f"CREATE INDEX IF NOT EXISTS {NAME} ON memory_items ({COLUMNS})"
        )


async def drop_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.client.capabilities.dialect == "sqlite":
        await schema_editor.client.execute_script(f"DROP INDEX IF EXISTS {NAME}")


class Migration(migrations.Migration):
    dependencies = [("personae", "0005_memory_versions")]

    initial = False

    operations = [ops.RunPython(create_index, drop_index)]
