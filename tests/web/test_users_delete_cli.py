"""``personae users delete``: remove an account and everything of it from the
command line, after a confirmation (or ``--yes``)."""

from __future__ import annotations

import asyncio

import pytest
import typer
from typer.testing import CliRunner

from personae.adapters.web.cli import register
from personae.core.settings import Settings
from personae.storage.accounts import AccountStore
from personae.storage.database import Database


@pytest.fixture
def cli(settings: Settings) -> typer.Typer:
    app = typer.Typer()
    register(app, settings=lambda: settings)
    return app


async def _account_and_token(settings: Settings, username: str, secret: str) -> tuple[bool, bool]:
    db = Database(settings.db_url)
    await db.connect()
    try:
        accounts = AccountStore()
        exists = await accounts.by_username(username) is not None
        return exists, await accounts.authenticate_token(secret) is not None
    finally:
        await db.close()


def test_users_delete_asks_first_then_removes_the_account_and_its_tokens(
    cli: typer.Typer, settings: Settings
) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["users", "create", "root", "--password", "long enough pw"])
    runner.invoke(cli, ["users", "create", "ann", "--password", "long enough pw"])
    secret = runner.invoke(cli, ["users", "token", "ann"]).stdout.strip().splitlines()[-1]

    declined = runner.invoke(cli, ["users", "delete", "ann"], input="n\n")
    kept = asyncio.run(_account_and_token(settings, "ann", secret))
    deleted = runner.invoke(cli, ["users", "delete", "ann", "--yes"])
    gone = asyncio.run(_account_and_token(settings, "ann", secret))
    missing = runner.invoke(cli, ["users", "delete", "nobody", "--yes"])

    assert declined.exit_code == 0 and "Nothing deleted" in declined.output
    assert kept == (True, True)
    assert deleted.exit_code == 0 and "Deleted ann" in deleted.output
    assert gone == (False, False)
    assert missing.exit_code == 1 and "no account 'nobody'" in missing.output
    assert asyncio.run(_account_and_token(settings, "root", ""))[0]
