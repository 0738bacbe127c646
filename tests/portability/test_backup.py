"""``db backup`` / ``db restore`` and the backup ``db migrate`` takes first: the
SQLite online backup API, pg_dump/pg_restore and the logical JSONL export."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from personae.core.settings import Settings
from personae.core.types import Scope
from personae.portability import backup, backup_before_migrate, restore
from personae.portability.backup import detect
from personae.portability.connection import connected
from personae.portability.errors import PortabilityError
from personae.storage import Database, MemoryStore, UserStore
from tests.portability.conftest import make


async def _remember(settings: Settings, text: str) -> None:
    async with connected(settings):
        ann = await UserStore().resolve("discord", "1", "Ann")
        await MemoryStore().add(Scope("sage", ann), text)


async def _texts(settings: Settings) -> set[str]:
    async with connected(settings):
        ann = await UserStore().resolve("discord", "1", "Ann")
        return {i.text for i in await MemoryStore().list(Scope("sage", ann))}


async def _round_trip(settings: Settings, path: Path, method: str) -> None:
    await _remember(settings, "Works as a nurse")
    done = await backup(settings, path, method=method)  # type: ignore[arg-type]
    assert done.path == path and done.size > 0
    await _remember(settings, "Written after the backup")
    assert await _texts(settings) == {"Works as a nurse", "Written after the backup"}
    kind, saved = await restore(settings, path)
    assert kind == detect(path)
    assert await _texts(settings) == {"Works as a nurse"}
    assert saved is not None  # the state before the restore was kept
    await restore(settings, saved, safety_backup=False)
    assert await _texts(settings) == {"Works as a nurse", "Written after the backup"}
    await _remember(settings, "Ids keep counting after a restore")


async def test_sqlite_online_backup_restores_over_an_existing_database(tmp_path: Path) -> None:
    settings = make(tmp_path, f"sqlite://{tmp_path / 'live.db'}")
    path = tmp_path / "backups" / "nightly.db"
    await _round_trip(settings, path, "native")
    assert detect(path) == "sqlite"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("method", ["native", "logical"])
async def test_backup_round_trip_on_each_database(tmp_path: Path, db_url: str, method: str) -> None:
    settings = make(tmp_path, db_url)
    path = tmp_path / f"backup.{method}"
    await _round_trip(settings, path, method)
    expected = {"native": "sqlite" if db_url.startswith("sqlite") else "pg_dump"}
    assert detect(path) == expected.get(method, "logical")


async def test_restore_refuses_files_that_are_not_backups(tmp_path: Path) -> None:
    settings = make(tmp_path, f"sqlite://{tmp_path / 'live.db'}")
    await _remember(settings, "Works as a nurse")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 not a backup")
    with pytest.raises(PortabilityError, match="not a personae backup"):
        await restore(settings, junk)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(PortabilityError, match="not a personae one"):
        await restore(settings, other)
    assert await _texts(settings) == {"Works as a nurse"}


async def test_migrate_takes_a_backup_only_when_a_migration_is_pending(tmp_path: Path) -> None:
    settings = make(tmp_path, f"sqlite://{tmp_path / 'live.db'}")
    assert await backup_before_migrate(settings) is None  # no database yet
    await _remember(settings, "Works as a nurse")
    assert await backup_before_migrate(settings) is None  # up to date
    with sqlite3.connect(tmp_path / "live.db") as conn:  # as if the newest had not run yet
        conn.executescript(
            "DROP TABLE conversation_summaries;"
            "DELETE FROM tortoise_migrations WHERE name = '0008_conversation_summaries';"
        )
    saved = await backup_before_migrate(settings)
    assert saved is not None and saved.parent == tmp_path / "data" / "backups"
    with sqlite3.connect(saved) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM tortoise_migrations")}
    assert "0008_conversation_summaries" not in names and "0006_recall_index" in names
    assert await Database(settings.db_url).migrate() == ["personae.0008_conversation_summaries"]
    assert await _texts(settings) == {"Works as a nurse"}
