"""Fixtures for the portability tests: settings on a real database (SQLite file or
the test PostgreSQL), connected for the test's duration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.core.settings import Settings
from personae.portability.connection import connected


def make(tmp_path: Path, url: str, name: str = "data") -> Settings:
    return Settings(data_dir=tmp_path / name, database_url=url)


@pytest.fixture
def psettings(tmp_path: Path, db_url: str) -> Settings:
    return make(tmp_path, db_url)


@pytest.fixture
async def db(psettings: Settings) -> AsyncIterator[Settings]:
    """The settings, with their database migrated and connected."""
    async with connected(psettings):
        yield psettings
