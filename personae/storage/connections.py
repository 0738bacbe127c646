"""Which database connection a statement uses."""

from __future__ import annotations

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import ConfigurationError

READER = "reader"
"""A second SQLite connection for the history reads a turn waits on (see :func:`reader`)."""


def reader() -> BaseDBAsyncClient:
    """The connection for reading a conversation's history.

    Tortoise serializes the statements of one SQLite connection, each holding it
    for a whole round trip through aiosqlite's thread and back through the event
    loop; under load the history check of a turn then queues behind the exchanges
    other turns are writing. In WAL mode a second connection reads while the
    first writes, and sees what the first committed. PostgreSQL's connection is
    already a pool, so there this is the default connection."""
    try:
        return Tortoise.get_connection(READER)
    except ConfigurationError:
        return Tortoise.get_connection("default")
