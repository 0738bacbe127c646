"""Every stored persona gets an immutable internal key; its id is unique per owner.

Memory, history, follow-ups, plugin state and voice samples name a persona by
its key, so a persona created later with a deleted persona's id starts empty,
and two users may each have a private persona with the same id. The key becomes
the primary key; existing rows get key = id, so what is stored under them stays
theirs. On SQLite the table is rebuilt (SQLite cannot change a primary key); on
PostgreSQL it is altered in place.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

SQLITE_FORWARD = [
    """CREATE TABLE "personas_keyed" (
        "key" VARCHAR(64) NOT NULL PRIMARY KEY,
        "id" VARCHAR(64) NOT NULL,
        "card" JSON NOT NULL,
        "shared" INT NOT NULL,
        "created_at" TIMESTAMP NOT NULL,
        "updated_at" TIMESTAMP NOT NULL,
        "owner_id" INT REFERENCES "users" ("id") ON DELETE CASCADE,
        CONSTRAINT "uid_personas_owner_i_persona" UNIQUE ("owner_id", "id")
    )""",
    """INSERT INTO "personas_keyed" (key, id, card, shared, created_at, updated_at, owner_id)
        SELECT id, id, card, shared, created_at, updated_at, owner_id FROM "personas\"""",
    'DROP TABLE "personas"',
    'ALTER TABLE "personas_keyed" RENAME TO "personas"',
    'CREATE INDEX "idx_personas_id" ON "personas" ("id")',
]

SQLITE_BACKWARD = [
    """CREATE TABLE "personas_by_id" (
        "id" VARCHAR(64) NOT NULL PRIMARY KEY,
        "card" JSON NOT NULL,
        "shared" INT NOT NULL,
        "created_at" TIMESTAMP NOT NULL,
        "updated_at" TIMESTAMP NOT NULL,
        "owner_id" INT REFERENCES "users" ("id") ON DELETE CASCADE
    )""",
    """INSERT OR IGNORE INTO "personas_by_id" (id, card, shared, created_at, updated_at, owner_id)
        SELECT id, card, shared, created_at, updated_at, owner_id FROM "personas"
        ORDER BY created_at""",
    'DROP TABLE "personas"',
    'ALTER TABLE "personas_by_id" RENAME TO "personas"',
]

POSTGRES_FORWARD = [
    'ALTER TABLE "personas" ADD COLUMN "key" VARCHAR(64)',
    'UPDATE "personas" SET "key" = "id"',
    'ALTER TABLE "personas" ALTER COLUMN "key" SET NOT NULL',
    'ALTER TABLE "personas" DROP CONSTRAINT "personas_pkey"',
    'ALTER TABLE "personas" ADD CONSTRAINT "personas_pkey" PRIMARY KEY ("key")',
    'ALTER TABLE "personas" ADD CONSTRAINT "uid_personas_owner_i_persona" UNIQUE ("owner_id", "id")',
    'CREATE INDEX "idx_personas_id" ON "personas" ("id")',
]

POSTGRES_BACKWARD = [
    'DROP INDEX IF EXISTS "idx_personas_id"',
    'ALTER TABLE "personas" DROP CONSTRAINT "uid_personas_owner_i_persona"',
    'ALTER TABLE "personas" DROP CONSTRAINT "personas_pkey"',
    'DELETE FROM "personas" p USING "personas" q WHERE p."id" = q."id" AND p."key" > q."key"',
    'ALTER TABLE "personas" ADD CONSTRAINT "personas_pkey" PRIMARY KEY ("id")',
    'ALTER TABLE "personas" DROP COLUMN "key"',
]


def _dialect(schema_editor: Any) -> str:
    dialect = str(schema_editor.client.capabilities.dialect)
    if dialect not in ("sqlite", "postgres"):
        raise RuntimeError(f"persona keys are written for SQLite and PostgreSQL, not {dialect}")
    return dialect


async def _run(schema_editor: Any, sqlite: list[str], postgres: list[str]) -> None:
    for sql in sqlite if _dialect(schema_editor) == "sqlite" else postgres:
        await schema_editor.client.execute_script(sql)


async def add_keys(apps: Any, schema_editor: Any) -> None:
    await _run(schema_editor, SQLITE_FORWARD, POSTGRES_FORWARD)


async def drop_keys(apps: Any, schema_editor: Any) -> None:
    """Back to ids as the primary key: of personas sharing an id, one stays."""
    await _run(schema_editor, SQLITE_BACKWARD, POSTGRES_BACKWARD)


class KeyPersonas(ops.TortoiseOperation):
    """The models' state after :func:`add_keys`: ``key`` the primary key, ``id`` an
    indexed column unique per owner. (One operation: the generic ones would each
    render the model in between, with no primary key or with two.)"""

    reduces_to_sql = False

    def describe(self) -> str:
        return "Key personas by an internal key (state)"

    def state_forward(self, app_label: str, state: Any) -> None:
        model = self.get_model_state(state, app_label, "Persona")
        fields_map = dict(model.fields)
        fields_map["key"] = fields.CharField(
            primary_key=True, unique=True, db_index=True, max_length=64
        )
        fields_map["id"] = fields.CharField(db_index=True, max_length=64)
        model.fields = {"key": fields_map.pop("key"), **fields_map}
        model.options["pk_attr"] = "key"
        model.options["unique_together"] = (("owner_id", "id"),)
        state.reload_model(app_label, "Persona")


class Migration(migrations.Migration):
    dependencies = [("personae", "0008_conversation_summaries")]

    initial = False

    operations = [ops.RunPython(add_keys, drop_keys), KeyPersonas()]
