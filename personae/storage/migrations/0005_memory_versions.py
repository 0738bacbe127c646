"""A version per user that moves whenever the user's memory items change.

The triggers count every writer (this process, another process, an import, a
merge), so a process can tell from one small read whether the memory it has
cached for a user is still what is stored. Changes of ``uses`` and
``last_used_at`` alone do not count: recall does not read them.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

RECALLED_COLUMNS = (
    "persona_id, user_id, kind, text, confidence, source_message_ids, embedding, "
    "created_at, updated_at"
)

SQLITE_TRIGGERS = [
    *(
        f"""CREATE TRIGGER memory_items_version_{event.split()[0].lower()}
        AFTER {event} ON memory_items BEGIN
            INSERT INTO memory_versions (user_id, version) VALUES ({row}.user_id, 1)
                ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
        END"""
        for event, row in (("INSERT", "NEW"), ("DELETE", "OLD"))
    ),
    f"""CREATE TRIGGER memory_items_version_update
    AFTER UPDATE OF {RECALLED_COLUMNS} ON memory_items BEGIN
        INSERT INTO memory_versions (user_id, version) VALUES (NEW.user_id, 1)
            ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
        INSERT INTO memory_versions (user_id, version)
            SELECT OLD.user_id, 1 WHERE OLD.user_id <> NEW.user_id
            ON CONFLICT (user_id) DO UPDATE SET version = version + 1;
    END""",
]

POSTGRES_TRIGGERS = [
    """CREATE OR REPLACE FUNCTION personae_memory_version() RETURNS trigger AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            INSERT INTO memory_versions (user_id, version) VALUES (OLD.user_id, 1)
                ON CONFLICT (user_id) DO UPDATE SET version = memory_versions.version + 1;
        END IF;
        IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.user_id <> OLD.user_id) THEN
            INSERT INTO memory_versions (user_id, version) VALUES (NEW.user_id, 1)
                ON CONFLICT (user_id) DO UPDATE SET version = memory_versions.version + 1;
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER memory_items_version_insert AFTER INSERT OR DELETE ON memory_items
    FOR EACH ROW EXECUTE FUNCTION personae_memory_version()""",
    f"""CREATE TRIGGER memory_items_version_update
    AFTER UPDATE OF {RECALLED_COLUMNS} ON memory_items
    FOR EACH ROW EXECUTE FUNCTION personae_memory_version()""",
]

DROP_TRIGGERS = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS memory_items_version_insert",
        "DROP TRIGGER IF EXISTS memory_items_version_delete",
        "DROP TRIGGER IF EXISTS memory_items_version_update",
    ],
    "postgres": [
        "DROP TRIGGER IF EXISTS memory_items_version_insert ON memory_items",
        "DROP TRIGGER IF EXISTS memory_items_version_update ON memory_items",
        "DROP FUNCTION IF EXISTS personae_memory_version()",
    ],
}


def _dialect(schema_editor: Any) -> str:
    dialect = str(schema_editor.client.capabilities.dialect)
    if dialect not in ("sqlite", "postgres"):
        raise RuntimeError(f"memory version triggers are written for SQLite and PostgreSQL, not {dialect}")
    return dialect


async def create_triggers(apps: Any, schema_editor: Any) -> None:
    dialect = _dialect(schema_editor)
    for sql in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRES_TRIGGERS:
        await schema_editor.client.execute_script(sql)


async def drop_triggers(apps: Any, schema_editor: Any) -> None:
    for sql in DROP_TRIGGERS[_dialect(schema_editor)]:
        await schema_editor.client.execute_script(sql)


class Migration(migrations.Migration):
    dependencies = [("personae", "0004_voice")]

    initial = False

    operations = [
        ops.CreateModel(
            name="MemoryVersion",
            fields=[
                (
                    "user_id",
                    fields.IntField(
                        generated=False, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("version", fields.BigIntField(default=0)),
            ],
            options={
                "table": "memory_versions",
                "app": "personae",
                "pk_attr": "user_id",
                "table_description": "How often a user's memory items have changed.",
            },
            bases=["Model"],
        ),
        ops.RunPython(create_triggers, drop_triggers),
    ]
