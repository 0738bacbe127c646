"""``personae users`` and ``personae serve``, through typer's CliRunner and a real
process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
import typer
from typer.testing import CliRunner

from personae.adapters.web.cli import register
from personae.core.settings import Settings
from personae.storage.accounts import AccountStore
from personae.storage.database import Database
from personae.testing.fake_ollama import FakeOllama


@pytest.fixture
def cli(settings: Settings) -> typer.Typer:
    app = typer.Typer()
    register(app, settings=lambda: settings)
    return app


async def _token_works(settings: Settings, username: str, secret: str) -> bool:
    db = Database(settings.db_url)
    await db.connect()
    try:
        account = await AccountStore().authenticate_token(secret)
        return account is not None and account.username == username
    finally:
        await db.close()


def test_users_create_makes_the_first_account_an_administrator(cli: typer.Typer) -> None:
    runner = CliRunner()

    first = runner.invoke(cli, ["users", "create", "root", "--password", "long enough pw"])
    second = runner.invoke(cli, ["users", "create", "ann"], input="another pw1\nanother pw1\n")
    taken = runner.invoke(cli, ["users", "create", "ann", "--password", "long enough pw"])

    assert first.exit_code == 0 and "administrator root" in first.output
    assert second.exit_code == 0 and "user ann" in second.output
    assert taken.exit_code == 1 and "taken" in taken.output


def test_users_token_prints_a_working_token_once(cli: typer.Typer, settings: Settings) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["users", "create", "root", "--password", "long enough pw"])

    made = runner.invoke(cli, ["users", "token", "root", "--name", "laptop"])
    missing = runner.invoke(cli, ["users", "token", "nobody"])

    assert made.exit_code == 0
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("pk_")
    assert asyncio.run(_token_works(settings, "root", secret))
    assert missing.exit_code == 1 and "no account" in missing.output


def test_users_create_help_does_not_call_the_password_required(cli: typer.Typer) -> None:
    shown = CliRunner().invoke(cli, ["users", "create", "--help"], env={"COLUMNS": "200"})

    password = next(line for line in shown.output.splitlines() if "--password" in line)
    assert "asked for" in password and "required" not in password


def test_users_list_shows_accounts_with_their_ids_and_roles(cli: typer.Typer) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["users", "create", "root", "--password", "long enough pw"])
    runner.invoke(cli, ["users", "create", "ann", "--password", "long enough pw"])

    listed = runner.invoke(cli, ["users", "list"], env={"COLUMNS": "200"})

    assert listed.exit_code == 0
    rows = [line for line in listed.output.splitlines() if "root" in line or "ann" in line]
    assert len(rows) == 2
    assert "administrator" in rows[0] and "web:" in rows[0]
    assert "user" in rows[1] and "administrator" not in rows[1]


def test_users_tokens_lists_working_tokens_without_their_secrets(cli: typer.Typer) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["users", "create", "root", "--password", "long enough pw"])
    secret = runner.invoke(cli, ["users", "token", "root", "--name", "laptop"]).stdout.split()[-1]

    listed = runner.invoke(cli, ["users", "tokens", "root"], env={"COLUMNS": "200"})

    assert listed.exit_code == 0
    assert "laptop" in listed.output and "never" in listed.output
    assert secret not in listed.output and secret[:8] in listed.output


def test_users_revoke_one_token_then_all(cli: typer.Typer, settings: Settings) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["users", "create", "root", "--password", "long enough pw"])
    first = runner.invoke(cli, ["users", "token", "root", "--name", "a"]).stdout.split()[-1]
    second = runner.invoke(cli, ["users", "token", "root", "--name", "b"]).stdout.split()[-1]
    third = runner.invoke(cli, ["users", "token", "root", "--name", "c"]).stdout.split()[-1]
    listed = runner.invoke(cli, ["users", "tokens", "root"], env={"COLUMNS": "200"}).output
    first_id = next(line for line in listed.splitlines() if " a " in line).split()[1]

    one = runner.invoke(cli, ["users", "revoke", "root", first_id])
    again = runner.invoke(cli, ["users", "revoke", "root", first_id])

    assert one.exit_code == 0 and "Revoked 1 token(s) of root." in one.output
    assert again.exit_code == 1 and "no working token" in again.output
    assert not asyncio.run(_token_works(settings, "root", first))
    assert asyncio.run(_token_works(settings, "root", second))

    every = runner.invoke(cli, ["users", "revoke", "root", "--all"])

    assert every.exit_code == 0 and "Revoked 2 token(s) of root." in every.output
    assert not asyncio.run(_token_works(settings, "root", second))
    assert not asyncio.run(_token_works(settings, "root", third))


def test_users_revoke_needs_a_token_id_or_all(cli: typer.Typer) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["users", "create", "root", "--password", "long enough pw"])

    neither = runner.invoke(cli, ["users", "revoke", "root"])

    assert neither.exit_code == 1 and "token id" in neither.output and "--all" in neither.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_serve_answers_and_stops_gracefully_on_ctrl_c_or_sigterm(
    tmp_path: Path, fake_ollama: FakeOllama, stop: signal.Signals
) -> None:
    port = _free_port()
    env = os.environ | {
        "PERSONAE_DATA_DIR": str(tmp_path / "data"),
        "PERSONAE_OLLAMA__HOST": fake_ollama.url,
        "PERSONAE_CONFIG": "",
    }
    script = (
        "import typer; from personae.adapters.web.cli import register; "
        "from personae.core.settings import load_settings; "
        "app = typer.Typer(); register(app, settings=load_settings); app()"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, "serve", "--port", str(port),
        env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        ready = False
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        ready = response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        assert ready
        process.send_signal(stop)
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    out = (await process.stdout.read()).decode() if process.stdout else ""
    assert code == 0, out
    assert f"serving on http://127.0.0.1:{port}" in out
    assert (tmp_path / "data" / "personae.db").exists()


async def _discord_user_with_data(settings: Settings) -> tuple[int, int]:
    from personae.core.runtime import Runtime
    from personae.core.types import Scope

    async with Runtime(settings, load_entry_points=False) as runtime:
        user_id = await runtime.users.resolve("discord", "1234", "gone")
        other = await runtime.users.resolve("discord", "5678", "stays")
        for who in (user_id, other):
            await runtime.history.append_exchange(Scope("sage", who), "discord:1", "hi", "hello")
            await runtime.memory.add(Scope("sage", who), "Likes tea")
    return user_id, other


async def _stored(settings: Settings, user_id: int) -> tuple[int, int]:
    from personae.core.runtime import Runtime

    async with Runtime(settings, load_entry_points=False) as runtime:
        data = await runtime.export_user_data(user_id)
    history = data["plugins"].get("history") or {}
    profile = data["plugins"].get("profile") or {}
    return len(str(history).split("'hello'")) - 1, len(str(profile).split("Likes tea")) - 1


def test_users_forget_deletes_a_platform_users_data_for_an_operator(
    cli: typer.Typer, settings: Settings
) -> None:
    user_id, other = asyncio.run(_discord_user_with_data(settings))
    assert asyncio.run(_stored(settings, user_id)) == (1, 1)

    refused = CliRunner().invoke(cli, ["users", "forget", "discord:1234"], input="n\n")
    done = CliRunner().invoke(cli, ["users", "forget", "discord:1234", "--yes"])
    unknown = CliRunner().invoke(cli, ["users", "forget", "discord:999", "--yes"])

    assert refused.exit_code == 1 and "Nothing was deleted" in refused.output
    assert done.exit_code == 0, done.output
    assert "Deleted" in done.output
    assert asyncio.run(_stored(settings, user_id)) == (0, 0)
    assert asyncio.run(_stored(settings, other)) == (1, 1)  # nobody else's
    assert unknown.exit_code == 1 and "identity" in unknown.output
