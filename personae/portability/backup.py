"""``personae db backup`` and ``personae db restore``, and the backup ``db migrate``
takes first.

- SQLite: Python's ``sqlite3`` online backup API copies the live database page by
  page into the backup file (consistent even while the bot writes, WAL included);
  a restore copies a backup file back over the live database the same way.
- PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore --clean
  --single-transaction`` (Debian: ``apt-get install postgresql-client``, the same
  major version as the server or newer). Without ``pg_dump`` — or with
  ``method="logical"`` — a logical JSON Lines export of every table
  (:mod:`personae.portability.logical`) is written instead.

A restore recognises the backup's kind from its content and first backs the
current database up under ``<data_dir>/backups/`` (unless told not to).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from personae.core.private_files import create_private
from personae.core.settings import Settings
from personae.portability import logical
from personae.portability.connection import connected
from personae.portability.errors import PortabilityError
from personae.storage import Database

Method = Literal["auto", "native", "logical"]
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
_LIBPQ_PARAMS = {"sslmode", "connect_timeout", "application_name", "sslrootcert"}


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    method: str
    """``"sqlite"``, ``"pg_dump"`` or ``"logical"``."""
    size: int


def is_sqlite(settings: Settings) -> bool:
    return settings.db_url.startswith("sqlite")


def sqlite_file(settings: Settings) -> Path:
    path = settings.db_url[len("sqlite://") :].split("?", 1)[0]
    if not path or path == ":memory:":
        raise PortabilityError("An in-memory SQLite database cannot be backed up or restored.")
    return Path(path).expanduser()


def libpq_url(url: str) -> str:
    """The database URL as ``pg_dump``/``pg_restore`` read it."""
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k in _LIBPQ_PARAMS])
    return urlunsplit(parts._replace(scheme="postgresql", query=query))


def detect(path: Path) -> str:
    """The kind of a backup file: ``sqlite``, ``pg_dump`` or ``logical``."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise PortabilityError(f"There is no backup at {path}.") from None
    except OSError as exc:
        raise PortabilityError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if head == SQLITE_MAGIC:
        return "sqlite"
    if head.startswith(PG_MAGIC):
        return "pg_dump"
    if logical.read_header(path) is not None:
        return "logical"
    raise PortabilityError(
        f"{path} is not a personae backup (neither SQLite, pg_dump custom format nor logical)."
    )


def _sqlite_copy(source: Path, target: Path, *, source_readonly: bool) -> None:
    uri = f"file:{source.resolve()}?mode=ro" if source_readonly else str(source)
    with (
        closing(sqlite3.connect(uri, uri=source_readonly)) as src,
        closing(sqlite3.connect(target, timeout=30)) as dst,
    ):
        src.backup(dst)


def _check_sqlite_backup(path: Path) -> None:
    try:
        with closing(sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)) as conn:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise PortabilityError(f"{path} is a damaged SQLite file: {exc}") from None
    if verdict != "ok":
        raise PortabilityError(f"{path} fails SQLite's integrity check: {verdict}")
    if not {"users", "memory_items", logical.MIGRATIONS_TABLE} <= tables:
        raise PortabilityError(f"{path} is a SQLite database but not a personae one.")


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    if process.returncode:
        message = err.decode(errors="replace").strip().splitlines()
        raise PortabilityError(
            f"{command[0]} failed ({process.returncode}): {' '.join(message[-3:])}"
        )


def _pg_tool(name: str) -> str | None:
    return shutil.which(name)


async def backup(settings: Settings, path: Path, *, method: Method = "auto") -> BackupResult:
    """Back the configured database up to ``path`` (replaced atomically)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private(partial)  # 0600 in a 0700 folder; every method writes into it
    try:
        if method == "logical":
            used = await _logical_backup(settings, partial)
        elif is_sqlite(settings):
            source = sqlite_file(settings)
            if not source.is_file():
                raise PortabilityError(f"There is no database at {source} to back up yet.")
            await asyncio.to_thread(_sqlite_copy, source, partial, source_readonly=False)
            used = "sqlite"
        elif _pg_tool("pg_dump"):
            await _run(
                "pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                f"--file={partial}", f"--dbname={libpq_url(settings.db_url)}",
            )  # fmt: skip
            used = "pg_dump"
        elif method == "native":
            raise PortabilityError(
                "pg_dump is not installed: install it (apt-get install postgresql-client) "
                "or back up with --method logical."
            )
        else:
            used = await _logical_backup(settings, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path, used, path.stat().st_size)


async def _logical_backup(settings: Settings, path: Path) -> str:
    async with connected(settings, migrate=False):
        with path.open("w", encoding="utf-8") as handle:
            await logical.dump(handle)
    return "logical"


def default_backup_path(settings: Settings, label: str, method: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    suffix = {"sqlite": ".db", "pg_dump": ".dump"}.get(method, ".jsonl")
    return Path(settings.data_dir) / "backups" / f"{label}-{stamp}{suffix}"


def native_method(settings: Settings) -> str:
    if is_sqlite(settings):
        return "sqlite"
    return "pg_dump" if _pg_tool("pg_dump") else "logical"


async def restore(
    settings: Settings, path: Path, *, safety_backup: bool = True
) -> tuple[str, Path | None]:
    """Restore ``path`` over the configured database. Returns the backup's kind
    and where the database as it was before was saved (None when not asked to).
    No connection of this process may be open on the database."""
    path = Path(path)
    kind = detect(path)
    if kind == "sqlite":
        if not is_sqlite(settings):
            raise PortabilityError(f"{path} is a SQLite backup; the configured database is not.")
        await asyncio.to_thread(_check_sqlite_backup, path)
    elif kind == "pg_dump":
        if is_sqlite(settings):
            raise PortabilityError(
                f"{path} is a pg_dump backup; the configured database is SQLite."
            )
        if not _pg_tool("pg_restore"):
            raise PortabilityError(
                "pg_restore is not installed: apt-get install postgresql-client."
            )
    saved: Path | None = None
    exists = not is_sqlite(settings) or sqlite_file(settings).is_file()
    if safety_backup and exists:
        saved = default_backup_path(settings, "pre-restore", native_method(settings))
        await backup(settings, saved)
    if kind == "sqlite":
        target = sqlite_file(settings)
        create_private(target)
        await asyncio.to_thread(_sqlite_copy, path, target, source_readonly=True)
    elif kind == "pg_dump":
        await _run(
            "pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges",
            "--single-transaction", f"--dbname={libpq_url(settings.db_url)}", str(path),
        )  # fmt: skip
    else:
        async with connected(settings, migrate=False):
            await logical.restore(path)
    return kind, saved


async def backup_before_migrate(settings: Settings) -> Path | None:
    """Back the database up before ``personae db migrate`` changes its schema.

    Returns the backup's path, or None when there is nothing to protect: no
    database yet, or no migration pending."""
    if is_sqlite(settings) and not sqlite_file(settings).is_file():
        return None
    database = Database(settings.db_url)
    pending = await database.pending_migrations()
    if not pending:
        return None
    from personae.storage.migrations import __path__ as migrations_path

    total = len([p for p in os.listdir(migrations_path[0]) if p[:4].isdigit()])
    if len(pending) >= total:
        return None  # an empty database: nothing to protect
    path = default_backup_path(settings, "pre-migrate", native_method(settings))
    return (await backup(settings, path)).path
