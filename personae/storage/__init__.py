"""Persona-scoped persistence on Tortoise ORM (SQLite by default, PostgreSQL at scale)."""

from personae.storage.database import Database, tortoise_config
from personae.storage.history import HistoryStore
from personae.storage.memory import MemoryStore
from personae.storage.personas import PersonaStore
from personae.storage.records import MemoryRecord, StoredMessage, UserRecord
from personae.storage.users import UserStore

__all__ = [
    "Database",
    "HistoryStore",
    "MemoryRecord",
    "MemoryStore",
    "PersonaStore",
    "StoredMessage",
    "UserRecord",
    "UserStore",
    "tortoise_config",
]
