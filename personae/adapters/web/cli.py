"""``personae serve`` and ``personae users``: run the HTTP service, manage web
accounts. :func:`register` adds them to the ``personae`` command."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any

import typer
from aiohttp import web
from rich.console import Console

from personae.core.errors import PersonaeError
from personae.core.settings import Settings
from personae.storage.accounts import AccountStore
from personae.storage.database import Database

console = Console()
errors = Console(stderr=True)
SettingsLoader = Callable[[], Settings]


def _default_settings() -> Settings:
    from personae.cli import settings

    return settings()


def register(app: typer.Typer, settings: SettingsLoader | None = None) -> None:
    """Add ``serve`` and the ``users`` group to ``app``. ``settings`` loads the
    settings (default: the ``personae`` command's ``--config``/environment)."""
    load = settings or _default_settings
    users = typer.Typer(help="Web accounts and their API tokens.", no_args_is_help=True)
    app.add_typer(users, name="users")

    @app.command()
    def serve(
        host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
        port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
        discord: Annotated[
            bool, typer.Option("--discord", help="Also run the Discord bot in this process.")
        ] = False,
    ) -> None:
        """Run the HTTP service (API, SSE, OpenAI-compatible endpoint). Ctrl-C stops
        it gracefully: replies in flight finish, background work is drained."""
        from personae.adapters.web.app import freeze_startup_objects, init_app

        config = load()
        application = init_app(config)
        if discord:
            from personae.adapters.discord.bot import bot_token

            bot_token(config)  # a missing token fails before anything starts
            application.cleanup_ctx.append(_discord_context)
        application.on_startup.append(freeze_startup_objects)  # after the runtime started
        config.web.host = host or config.web.host
        config.web.port = config.web.port if port is None else port
        logging.getLogger("aiohttp.access").setLevel(logging.INFO)
        try:
            web.run_app(
                application,
                host=config.web.host,
                port=config.web.port,
                shutdown_timeout=config.web.shutdown_timeout_seconds + 5,
                print=lambda _: console.print(
                    f"personae is serving on http://{config.web.host}:{config.web.port} "
                    "(Ctrl-C to stop)",
                    highlight=False,
                ),
            )
        except PersonaeError as error:
            errors.print(f"[bold red]Error:[/] {error}", highlight=False)
            raise typer.Exit(1) from None
        except OSError as error:
            errors.print(f"[bold red]Error:[/] cannot listen: {error}", highlight=False)
            raise typer.Exit(1) from None

    @users.command("create")
    def create(
        username: Annotated[str, typer.Argument(help="Login name.")],
        password: Annotated[
            str,
            typer.Option(
                prompt=True,
                hide_input=True,
                confirmation_prompt=True,
                help="The password (asked for when not given).",
            ),
        ],
        admin: Annotated[bool, typer.Option("--admin", help="Make an administrator.")] = False,
        name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    ) -> None:
        """Create a web account (the first account is an administrator)."""

        async def go() -> None:
            async with _accounts(load()) as accounts:
                account = await accounts.create(
                    username, password, name=name, is_admin=True if admin else None
                )
            role = "administrator" if account.is_admin else "user"
            console.print(f"Created {role} [bold]{account.username}[/] (id {account.id}).")

        _run(go())

    @users.command("token")
    def token(
        username: Annotated[str, typer.Argument(help="Whose token.")],
        label: Annotated[str, typer.Option("--name", help="What the token is for.")] = "cli",
    ) -> None:
        """Create an API token for a user and print it (it is shown only once)."""

        async def go() -> None:
            async with _accounts(load()) as accounts:
                account = await accounts.by_username(username)
                if account is None:
                    raise PersonaeError(f"There is no account {username!r}.")
                _, secret = await accounts.create_token(account.id, label)
            errors.print(f"API token {label!r} for {account.username} (shown only once):")
            print(secret)

        _run(go())

    @users.command("delete")
    def delete(
        username: Annotated[str, typer.Argument(help="Whose account.")],
        yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    ) -> None:
        """Delete an account and everything of it: its custom personas (with what
        anyone stored under them), all it told every persona, its identities,
        tokens and sessions. A running server stops accepting its tokens within
        ``web.auth_cache_seconds``."""
        from personae.core.runtime import Runtime

        async def go() -> None:
            async with Runtime(load()) as rt:
                accounts = AccountStore()
                account = await accounts.by_username(username)
                if account is None:
                    raise PersonaeError(f"There is no account {username!r}.")
                question = f"Delete {account.username} (id {account.id}) and all of its data?"
                if not yes and not await asyncio.to_thread(typer.confirm, question):
                    console.print("Nothing deleted.")
                    return
                counts = await rt.delete_user(account.id)
            console.print(f"Deleted {account.username}: {sum(counts.values())} records.")

        _run(go())


async def _discord_context(app: web.Application) -> AsyncIterator[None]:
    """Run the Discord bot on the app's runtime for the app's lifetime."""
    from personae.adapters.discord.bot import DiscordService
    from personae.adapters.web.keys import RUNTIME, SETTINGS

    service = DiscordService(app[RUNTIME], app[SETTINGS])
    await service.start()
    try:
        yield
    finally:
        await service.stop()


@asynccontextmanager
async def _accounts(settings: Settings) -> AsyncIterator[AccountStore]:
    """The account store on a connected (and migrated) database."""
    db = Database(settings.db_url)
    await db.connect(migrate=True)
    try:
        yield AccountStore()
    finally:
        await db.close()


def _run(work: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(work)
    except PersonaeError as error:
        errors.print(f"[bold red]Error:[/] {error}", highlight=False)
        raise typer.Exit(1) from None
