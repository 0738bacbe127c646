"""Opening the configured database for a portability command (no runtime, no LLM)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from personae.core.settings import Settings
from personae.portability.errors import PortabilityError
from personae.storage import Database
from personae.storage.models import Identity, User


@asynccontextmanager
async def connected(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Database]:
    """The database of ``settings``, migrated to the current schema, closed afterwards."""
    db = Database(settings.db_url)
    await db.connect(migrate=migrate)
    try:
        yield db
    finally:
        await db.close()


async def find_user(spec: str) -> int:
    """The internal id of a user named on the command line: ``alice`` (a web
    username), ``42`` (an id) or ``PLATFORM:ID`` (an identity such as
    ``discord:1234``). A username wins over an id that looks the same."""
    platform, sep, external_id = spec.partition(":")
    if not sep:
        account = await User.filter(username=spec.strip().lower()).values("id")
        if account:
            return int(account[0]["id"])
        if spec.isdigit() and await User.filter(id=int(spec)).exists():
            return int(spec)
        raise PortabilityError(
            f"No user {spec!r}: give a username, a user id or PLATFORM:ID, e.g. "
            "discord:1234 (`personae users list` shows them)."
        )
    found = await Identity.filter(platform=platform, external_id=external_id).values("user_id")
    if not found:
        raise PortabilityError(f"No user has the identity {spec!r}.")
    return int(found[0]["user_id"])
