"""A logical backup of every table as JSON Lines, for PostgreSQL without
``pg_dump`` (and for SQLite on request).

The first line names the format, the database kind and the migrations applied;
each further line is ``{"table": NAME, "row": {...}}``. A restore needs a database
of the same kind at the same migrations (run ``personae db migrate`` first); it
empties every table and inserts the rows in one transaction, then moves
PostgreSQL's id sequences past the restored ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model
from tortoise.transactions import in_transaction

from personae.portability.errors import PortabilityError
from personae.storage import models

FORMAT = "personae.backup"
SCHEMA_VERSION = 1
MIGRATIONS_TABLE = "tortoise_migrations"


def _dialect(conn: BaseDBAsyncClient) -> str:
    return "postgres" if conn.capabilities.dialect == "postgres" else "sqlite"


def _models() -> list[type[Model]]:
    return [
        value
        for value in vars(models).values()
        if isinstance(value, type) and issubclass(value, Model) and value is not Model
    ]


async def _tables(conn: BaseDBAsyncClient) -> list[str]:
    """Every table, parents before the tables that reference them."""
    if _dialect(conn) == "postgres":
        rows = await conn.execute_query_dict(
            "SELECT table_name AS name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
    else:
        rows = await conn.execute_query_dict(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    names = sorted(row["name"] for row in rows)
    parents: dict[str, set[str]] = {name: set() for name in names}
    for model in _models():
        table = model._meta.db_table
        for fk in model._meta.fk_fields:
            related = model._meta.fields_map[fk].related_model._meta.db_table  # type: ignore[attr-defined]
            if table in parents and related != table:
                parents[table].add(related)
    ordered: list[str] = []
    while parents:
        ready = sorted(n for n, deps in parents.items() if not deps - set(ordered))
        ready = ready or sorted(parents)  # a cycle: keep going in name order
        for name in ready:
            ordered.append(name)
            parents.pop(name)
    return ordered


async def applied_migrations(conn: BaseDBAsyncClient) -> list[str]:
    rows = await conn.execute_query_dict(
        f'SELECT app, name FROM "{MIGRATIONS_TABLE}" ORDER BY app, name'
    )
    return [f"{row['app']}.{row['name']}" for row in rows]


def _encode(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to a logical backup")


async def dump(target: IO[str]) -> dict[str, int]:
    """Write every table of the default connection; returns the row count per table."""
    conn = Tortoise.get_connection("default")
    counts: dict[str, int] = {}
    header = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "database": _dialect(conn),
        "migrations": await applied_migrations(conn),
        "created_at": datetime.now().astimezone().isoformat(),
    }
    target.write(json.dumps(header) + "\n")
    for table in await _tables(conn):
        rows = await conn.execute_query_dict(f'SELECT * FROM "{table}"')
        for row in rows:
            target.write(json.dumps({"table": table, "row": row}, default=_encode) + "\n")
        counts[table] = len(rows)
    return counts


def read_header(path: Path) -> dict[str, Any] | None:
    """The header of a logical backup, or None when ``path`` is not one."""
    try:
        with path.open("r", encoding="utf-8") as handle:
            header = json.loads(handle.readline())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return header if isinstance(header, dict) and header.get("format") == FORMAT else None


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open("r", encoding="utf-8") as handle:
        handle.readline()
        for number, line in enumerate(handle, 2):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                yield record["table"], record["row"]
            except (ValueError, KeyError, TypeError):
                raise PortabilityError(f"{path}:{number} is not a backup row.") from None


async def _pg_types(conn: BaseDBAsyncClient) -> dict[tuple[str, str], str]:
    rows = await conn.execute_query_dict(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    )
    return {(r["table_name"], r["column_name"]): r["data_type"] for r in rows}


def _pg_value(kind: str | None, value: Any) -> Any:
    if value is None or kind is None:
        return value
    if kind.startswith("timestamp"):
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    return value


async def restore(path: Path) -> dict[str, int]:
    """Replace every table's rows with the backup's, in one transaction."""
    header = read_header(path)
    if header is None:
        raise PortabilityError(f"{path} is not a personae logical backup.")
    conn = Tortoise.get_connection("default")
    kind = _dialect(conn)
    if header.get("database") != kind:
        raise PortabilityError(
            f"{path} is a backup of a {header.get('database')} database; "
            f"the configured database is {kind}."
        )
    here = await applied_migrations(conn)
    if header.get("migrations") != here:
        raise PortabilityError(
            f"{path} was taken at migrations {header.get('migrations')}, but the database is "
            f"at {here}; restore into a database at the backup's migrations."
        )
    tables = [t for t in await _tables(conn) if t != MIGRATIONS_TABLE]
    types = await _pg_types(conn) if kind == "postgres" else {}
    grouped: dict[str, list[dict[str, Any]]] = {table: [] for table in tables}
    for table, row in _rows(path):
        if table == MIGRATIONS_TABLE:
            continue
        if table not in grouped:
            raise PortabilityError(f"{path} holds rows of {table!r}, a table this database lacks.")
        grouped[table].append(row)
    counts: dict[str, int] = {}
    async with in_transaction("default") as tx:
        if kind == "postgres":
            quoted = ", ".join(f'"{t}"' for t in tables)
            await tx.execute_script(f"TRUNCATE {quoted} CASCADE")
        else:
            await tx.execute_script("PRAGMA defer_foreign_keys = ON")
            for table in reversed(tables):
                await tx.execute_script(f'DELETE FROM "{table}"')
        for table in tables:
            rows = grouped[table]
            counts[table] = len(rows)
            if not rows:
                continue
            columns = list(rows[0])
            names = ", ".join(f'"{c}"' for c in columns)
            if kind == "postgres":
                marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
                values = [
                    [_pg_value(types.get((table, c)), row.get(c)) for c in columns] for row in rows
                ]
            else:
                marks = ", ".join("?" for _ in columns)
                values = [[row.get(c) for c in columns] for row in rows]
            await tx.execute_many(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', values)
            if types.get((table, "id")) in {"integer", "bigint", "smallint"}:
                await tx.execute_query(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                    f'COALESCE(MAX("id"), 0) + 1, false) FROM "{table}"'
                )
    return counts
