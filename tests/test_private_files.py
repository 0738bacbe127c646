"""The files the service creates for its data are private: 0600 files in 0700
folders, even under a permissive umask (the SQLite database and its WAL files,
backups, avatars, voice files)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from personae.core.private_files import create_private, private_dir, write_private
from personae.core.settings import Settings
from personae.portability import backup
from personae.storage import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


async def test_a_new_sqlite_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = Database(f"sqlite://{data / 'personae.db'}")

    await database.connect()
    try:
        modes = {p.name: mode(p) for p in data.glob("personae.db*")}  # while the WAL is open
    finally:
        await database.close()

    assert mode(data) == 0o700
    assert {"personae.db", "personae.db-wal"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o600)


async def test_a_backup_is_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    database = Database(settings.db_url)
    await database.connect()
    await database.close()

    result = await backup(settings, tmp_path / "backups" / "nightly.db")

    assert mode(result.path) == 0o600
    assert mode(result.path.parent) == 0o700


def test_written_files_replace_atomically_and_are_private(tmp_path: Path) -> None:
    target = tmp_path / "voice" / "sage" / "1.ogg"

    write_private(target, b"first")
    write_private(target, b"second")

    assert target.read_bytes() == b"second"
    assert mode(target) == 0o600
    assert mode(target.parent) == mode(target.parent.parent) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["1.ogg"]


def test_existing_files_and_folders_keep_their_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    existing = shared / "personae.db"
    existing.write_bytes(b"")
    existing.chmod(0o640)

    assert create_private(existing) is False
    assert private_dir(shared) == shared
    assert mode(existing) == 0o640 and mode(shared) == 0o755
