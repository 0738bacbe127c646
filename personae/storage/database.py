"""Connecting to the database and keeping its schema current.

SQLite (the default) runs in WAL mode with a busy timeout; PostgreSQL is used
through asyncpg when several processes share the load. The schema is managed by
Tortoise ORM's built-in migrations, committed under ``personae/storage/migrations``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.migrations.api import migrate as tortoise_migrate
from tortoise.migrations.executor import MigrationExecutor

from personae.core.errors import StorageError
from personae.core.private_files import create_private
from personae.storage import recall
from personae.storage.connections import close_read_pool, open_read_pool

log = logging.getLogger(__name__)

APP_LABEL = "personae"
MODELS_MODULE = "personae.storage.models"
MIGRATIONS_MODULE = "personae.storage.migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def sqlite_path(url: str) -> str | None:
    """The file of an SQLite URL; None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite://"):
        return None
    path = url[len("sqlite://") :].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def normalize_url(url: str) -> str:
    """Fill in the SQLite pragmas personae relies on and create the file's folder."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        if parts.scheme not in {"postgres", "postgresql", "asyncpg"}:
            raise StorageError(
                f"Unsupported database URL scheme {parts.scheme!r}: use sqlite://PATH "
                "or postgres://USER@HOST:PORT/DB."
            )
        return url
    path = url[len("sqlite://") :].split("?", 1)[0]
    if sqlite_path(url):
        create_private(Path(path).expanduser())  # 0600, so its -wal and -shm are too
    query = dict(parse_qsl(parts.query))
    query.setdefault("journal_mode", "WAL")
    query.setdefault("busy_timeout", str(SQLITE_BUSY_TIMEOUT_MS))
    query.setdefault("synchronous", "NORMAL")
    return f"sqlite://{path}?{urlencode(query)}"


def tortoise_config(url: str) -> dict[str, Any]:
    """The Tortoise ORM configuration for a database URL."""
    return {
        "connections": {"default": normalize_url(url)},
        "apps": {
            APP_LABEL: {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


class Database:
    """Owns the ORM's connections for one runtime.

    ``await db.connect()`` opens the connections and, with ``migrate=True``,
    applies pending migrations first; ``await db.close()`` closes them.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.connected = False

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""
        applied: list[str] = []

        def progress(event: str, app_label: str, name: str) -> None:
            if event == "apply_done":
                applied.append(f"{app_label}.{name}")

        try:
            await tortoise_migrate(config=tortoise_config(self.url), progress=progress)
        except OSError as exc:
            raise StorageError(f"Cannot reach the database {describe(self.url)}: {exc}") from exc
        finally:
            await Tortoise.close_connections()
        return applied

    async def pending_migrations(self) -> list[str]:
        """Names of migrations not yet applied."""
        config = tortoise_config(self.url)
        try:
            await Tortoise.init(config=config, init_connections=False)
            executor = MigrationExecutor(Tortoise.get_connection("default"), config["apps"])
            steps = await executor.plan(None)
        except OSError as exc:
            raise StorageError(f"Cannot reach the database {describe(self.url)}: {exc}") from exc
        finally:
            await Tortoise.close_connections()
        return [f"{s.migration.app_label}.{s.migration.name}" for s in steps if not s.backward]

    async def connect(self, *, migrate: bool = True) -> None:
        """Open connections; apply migrations first when ``migrate`` is true."""
        if migrate:
            applied = await self.migrate()
            for name in applied:
                log.info("applied migration %s", name)
        # Tortoise caches INSERT statements per connection name, not per dialect:
        # forget them so a process can move from one database kind to another.
        EXECUTOR_CACHE.clear()
        recall.clear_cache()
        try:
            await Tortoise.init(config=tortoise_config(self.url), _enable_global_fallback=True)
            await Tortoise.get_connection("default").execute_query("SELECT 1")
        except OSError as exc:
            raise StorageError(f"Cannot reach the database {describe(self.url)}: {exc}") from exc
        path = sqlite_path(self.url)
        if path is not None:  # the same file and busy timeout as Tortoise's connection
            query = dict(parse_qsl(urlsplit(normalize_url(self.url)).query))
            open_read_pool(path, int(query["busy_timeout"]), query["synchronous"])
        self.connected = True

    async def close(self) -> None:
        if self.connected:
            close_read_pool()
            await Tortoise.close_connections()
            self.connected = False
