"""``personae serve`` and ``personae users``: run the HTTP service, manage web
accounts. :func:`register` adds them to the ``personae`` command."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import typer
from aiohttp import web
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from personae.core.errors import PersonaeError
from personae.core.settings import Settings
from personae.storage.accounts import Account, AccountStore
from personae.storage.database import Database
from personae.storage.models import User

console = Console()
errors = Console(stderr=True, soft_wrap=True)
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
        port: Annotated[int | None, typer.Option(help="Port to listen on (0-65535).")] = None,
        discord: Annotated[
            bool, typer.Option("--discord", help="Also run the Discord bot in this process.")
        ] = False,
    ) -> None:
        """Run the HTTP service (web UI, API, SSE, OpenAI-compatible endpoint). Ctrl-C
        stops it gracefully: replies in flight finish, background work is drained."""
        from personae.adapters.web.app import freeze_startup_objects, init_app

        if port is not None and not 0 <= port <= 65535:
            _fail(f"--port must be between 0 and 65535, not {port}.")
        config = load()
        config.web.host = host or config.web.host
        config.web.port = config.web.port if port is None else port
        try:
            application = init_app(config)
            if discord:
                from personae.adapters.discord.bot import bot_token

                bot_token(config)  # a missing token fails before anything starts
                application[DISCORD_FAILURE] = []
                application.cleanup_ctx.append(_discord_context)
        except PersonaeError as error:
            _fail(error)
        application.on_startup.append(freeze_startup_objects)  # after the runtime started
        application.on_startup.append(_say_what_is_missing)
        logging.getLogger("aiohttp.access").setLevel(logging.INFO)
        try:
            web.run_app(
                application,
                host=config.web.host,
                port=config.web.port,
                shutdown_timeout=config.web.shutdown_timeout_seconds + 5,
                print=lambda text: console.print(
                    f"personae is serving on {_browser_url(text, config)} — open it in a "
                    "browser (Ctrl-C to stop)",
                    highlight=False,
                    soft_wrap=True,
                ),
            )
        except PersonaeError as error:
            _fail(error)
        except OSError as error:
            _fail(
                f"cannot listen on {config.web.host}:{config.web.port}: {error.strerror or error}"
            )
        for failure in application.get(DISCORD_FAILURE, []):
            reason = str(failure) if isinstance(failure, PersonaeError) else repr(failure)
            _fail(f"the Discord bot stopped: {reason}")

    @users.command("create")
    def create(
        username: Annotated[str, typer.Argument(help="Login name.")],
        password: Annotated[
            str | None,
            typer.Option(
                help="The password; asked for (twice, hidden) when not given.",
                show_default=False,
            ),
        ] = None,
        admin: Annotated[bool, typer.Option("--admin", help="Make an administrator.")] = False,
        name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    ) -> None:
        """Create a web account (the first account is an administrator)."""
        if password is None:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

        async def go() -> None:
            async with _accounts(load()) as accounts:
                account = await accounts.create(
                    username, password, name=name, is_admin=True if admin else None
                )
            role = "administrator" if account.is_admin else "user"
            console.print(f"Created {role} [bold]{account.username}[/] (id {account.id}).")

        _run(go())

    @users.command("list")
    def list_users() -> None:
        """List the users: web accounts and people known from a platform (the chat
        in the terminal, Discord), with the ids other commands accept."""

        async def go() -> None:
            async with _accounts(load()):
                people = await directory()
            table = Table("id", "username", "name", "role", "identities")
            for person in people:
                table.add_row(
                    str(person.id),
                    person.username or "-",
                    escape(person.name),
                    "administrator" if person.is_admin else "user",
                    escape(", ".join(person.identities)) or "-",
                )
            console.print(table)
            if not people:
                console.print("No users yet: `personae users create NAME` makes the first one.")

        _run(go())

    @users.command("token")
    def token(
        username: Annotated[str, typer.Argument(help="Whose token.")],
        label: Annotated[str, typer.Option("--name", help="What the token is for.")] = "cli",
    ) -> None:
        """Create an API token for a user and print it (it is shown only once)."""

        async def go() -> None:
            async with _accounts(load()) as accounts:
                account = await _account(accounts, username)
                _, secret = await accounts.create_token(account.id, label)
            errors.print(
                f"API token {escape(repr(label))} for {account.username} (shown only once):",
                highlight=False,
            )
            print(secret)

        _run(go())

    @users.command("tokens")
    def tokens(username: Annotated[str, typer.Argument(help="Whose tokens.")]) -> None:
        """List a user's API tokens that still work (never their secrets)."""

        async def go() -> None:
            async with _accounts(load()) as accounts:
                account = await _account(accounts, username)
                records = await accounts.tokens(account.id)
            if not records:
                console.print(f"{account.username} has no API tokens.", highlight=False)
                return
            table = Table("id", "name", "starts with", "created", "last used")
            for record in records:
                used = record.last_used_at
                table.add_row(
                    str(record.id),
                    escape(record.name),
                    f"{record.prefix}…",
                    f"{record.created_at:%Y-%m-%d %H:%M}",
                    f"{used:%Y-%m-%d %H:%M}" if used else "never",
                )
            console.print(table)

        _run(go())

    @users.command("revoke")
    def revoke(
        username: Annotated[str, typer.Argument(help="Whose token.")],
        token_id: Annotated[
            int | None, typer.Argument(help="The token's id (`personae users tokens NAME`).")
        ] = None,
        every: Annotated[
            bool, typer.Option("--all", help="Revoke all of the user's tokens.")
        ] = False,
    ) -> None:
        """Revoke one API token of a user (by id), or all of them with --all."""
        if (token_id is None) == (not every):
            _fail("Give either a token id (see `personae users tokens NAME`) or --all.")

        async def go() -> None:
            async with _accounts(load()) as accounts:
                account = await _account(accounts, username)
                wanted = [token_id] if token_id is not None else [
                    record.id for record in await accounts.tokens(account.id)
                ]  # fmt: skip
                revoked = [i for i in wanted if await accounts.revoke_token(account.id, i)]
            if token_id is not None and not revoked:
                raise PersonaeError(
                    f"{account.username} has no working token {token_id}; "
                    f"`personae users tokens {account.username}` lists them."
                )
            console.print(
                f"Revoked {len(revoked)} token(s) of {account.username}.", highlight=False
            )

        _run(go())

    @users.command("forget")
    def forget(
        who: Annotated[
            str,
            typer.Argument(
                help="A web username, a user id, or a platform identity such as discord:1234."
            ),
        ],
        persona: Annotated[
            str | None, typer.Option(help="Only what this persona stored (default: all).")
        ] = None,
        yes: Annotated[bool, typer.Option("--yes", help="Do not ask to confirm.")] = False,
    ) -> None:
        """Delete everything every plugin stores about a person (memory, history,
        follow-ups, voice, plugin data), for when they cannot ask themselves, e.g.
        a Discord user who left. The account itself stays."""
        from personae.core.runtime import Runtime
        from personae.portability.connection import find_user

        config = load()

        async def go() -> None:
            async with Runtime(config) as runtime:
                user_id = await find_user(who)
                if persona is not None:
                    await runtime.personas.get(persona)  # an unknown persona is an error
                scope = f"what {persona} stored" if persona else "everything stored"
                if not yes and not typer.confirm(f"Delete {scope} about {who}?"):
                    raise PersonaeError("Nothing was deleted.")
                counts = await runtime.forget_user(user_id, persona)
            total = sum(counts.values())
            detail = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()) if count)
            console.print(
                f"Deleted {total} record(s) about {who}" + (f" ({detail})." if detail else "."),
                highlight=False,
            )

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


DISCORD_FAILURE: web.AppKey[list[BaseException]] = web.AppKey("discord_failure", list)


async def _discord_context(app: web.Application) -> AsyncIterator[None]:
    """Run the Discord bot on the app's runtime for the app's lifetime. If the bot
    stops for good (a rejected token, a missing intent), the service stops too
    (gracefully, as on SIGTERM) and ``serve`` exits with the reason: a web service
    running on beside a dead bot would hide it."""
    from personae.adapters.discord.bot import DiscordService
    from personae.adapters.web.keys import RUNTIME, SETTINGS

    service = DiscordService(app[RUNTIME], app[SETTINGS])
    await service.start()

    async def watch() -> None:
        try:
            await service.wait_closed()
        except Exception as error:
            app[DISCORD_FAILURE].append(error)
            signal.raise_signal(signal.SIGTERM)  # run_app's handler stops gracefully

    watcher = asyncio.create_task(watch(), name="discord-watch")
    try:
        yield
    finally:
        watcher.cancel()
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


def _fail(message: object) -> NoReturn:
    """One error line on standard error, then exit 1."""
    errors.print(f"[bold red]Error:[/] {escape(str(message))}", highlight=False)
    raise typer.Exit(1)


def _run(work: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(work)
    except PersonaeError as error:
        _fail(error)


async def _account(accounts: AccountStore, username: str) -> Account:
    account = await accounts.by_username(username)
    if account is None:
        raise PersonaeError(f"There is no account {username!r}; `personae users list` shows them.")
    return account


@dataclass(frozen=True, slots=True)
class Person:
    """A user as ``personae users list`` shows them."""

    id: int
    username: str | None
    name: str
    is_admin: bool
    identities: list[str]
    """``platform:external id`` of each identity, e.g. ``cli:ann``, ``discord:1234``."""


async def directory() -> list[Person]:
    """Every user, oldest first, with their identities (on a connected database)."""
    users = await User.all().order_by("id").prefetch_related("identities")
    return [
        Person(
            user.id,
            user.username,
            user.name,
            user.is_admin,
            [f"{i.platform}:{i.external_id}" for i in sorted(user.identities, key=lambda i: i.id)],
        )
        for user in users
    ]


def _browser_url(text: str, config: Settings) -> str:
    """Where to open the service in a browser: the address aiohttp reports (which
    knows the real port when 0 was asked for), with a wildcard host replaced by
    the loopback address."""
    found = re.search(r"https?://\S+", text)
    url = found.group(0) if found else f"http://{config.web.host}:{config.web.port}"
    return re.sub(r"//(0\.0\.0\.0|\[::\])(?=:)", "//127.0.0.1", url)


async def _say_what_is_missing(app: web.Application) -> None:
    """At start-up, one line for each thing a first chat would trip over: Ollama
    not reachable, the model not pulled, no account yet. Serving goes on."""
    from personae.adapters.web.health import check_llm
    from personae.adapters.web.keys import ACCOUNTS, RUNTIME, SETTINGS

    config = app[SETTINGS]
    if config.llm_backend == "ollama":
        host, model = config.ollama.host, config.ollama.model
        state = await check_llm(app[RUNTIME].llm, model, config.web.ready_timeout_seconds, host)
        if state.status == "model not pulled":
            _warn(f"model {model} is not pulled in Ollama at {host} — run `ollama pull {model}`.")
        elif state.status in {"connection refused", "unreachable"}:
            _warn(
                f"Ollama is not reachable at {host} ({state.status}) — start it with "
                "`ollama serve`, or set ollama.host."
            )
        elif not state.ok:
            _warn(
                f"Ollama at {host} is not answering ({state.status}) — check that it "
                "runs there (`ollama serve`), or set ollama.host."
            )
    if await app[ACCOUNTS].count() == 0:
        console.print(
            "No accounts yet: the first account created (in the browser, or with "
            "`personae users create NAME`) becomes the administrator.",
            highlight=False,
            soft_wrap=True,
        )


def _warn(message: str) -> None:
    errors.print(
        f"[bold yellow]Warning:[/] {escape(message)} Serving anyway; chats fail until then.",
        highlight=False,
    )
