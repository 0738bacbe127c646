"""The ``personae`` command."""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from personae import __version__
from personae.core.cards import PersonaCard, load_card_and_picture, parse_card_json, save_card
from personae.core.commands import CommandContext
from personae.core.errors import CardError, CommandError, PersonaeError
from personae.core.settings import Settings, load_settings
from personae.core.types import Scope, Turn

T = TypeVar("T")

app = typer.Typer(help="personae: chat bots that wear personas.", no_args_is_help=True)
personas_app = typer.Typer(help="List, show, import and export personas.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema and maintenance.", no_args_is_help=True)
app.add_typer(personas_app, name="personas")
app.add_typer(db_app, name="db")

console = Console()
errors = Console(stderr=True, soft_wrap=True)
"""Errors go to standard error, each on one line however narrow the terminal."""
_state: dict[str, Any] = {}

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Settings file (TOML).", show_default=False)
]


@app.callback()
def main_options(
    config: ConfigOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    _state["config"] = config
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def settings() -> Settings:
    if "settings" not in _state:
        _state["settings"] = load_settings(_state.get("config"))
    loaded: Settings = _state["settings"]
    return loaded


def show_error(message: object) -> None:
    """Print ``Error: message`` as one line on standard error. The message is shown
    as written: brackets in it (``[discord]``) are not taken for markup."""
    errors.print(f"[bold red]Error:[/] {escape(str(message))}", highlight=False)


def fail(message: object, code: int = 1) -> NoReturn:
    """Show ``message`` as one error line and leave with ``code``."""
    show_error(message)
    raise typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; show personae's errors as one line, without a traceback."""
    try:
        return asyncio.run(coro)
    except PersonaeError as exc:
        fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def runtime() -> Any:
    from personae.core.runtime import Runtime

    return Runtime(settings())


async def cli_user(rt: Any, name: str | None) -> int:
    login = name or getpass.getuser()
    return int(await rt.users.resolve("cli", login, login))


@app.command()
def version() -> None:
    """Print personae's version."""
    console.print(__version__)


@app.command()
def chat(
    persona: Annotated[str | None, typer.Option("--persona", "-p", help="Persona id.")] = None,
    user: Annotated[str | None, typer.Option(help="Your name (default: login).")] = None,
    conversation: Annotated[str, typer.Option(help="Conversation key.")] = "cli",
) -> None:
    """Talk to a persona in the terminal. /help lists commands; /quit leaves."""
    run(_chat(persona, user, conversation))


async def _chat(persona_id: str | None, user: str | None, conversation: str) -> None:
    async with runtime() as rt:
        user_id = await cli_user(rt, user)
        name = user or getpass.getuser()
        card = await rt.personas.get(persona_id or rt.settings.default_persona, viewer=user_id)
        scope = await rt.personas.scope(card.id, user_id)
        console.print(
            f"[bold]{card.name}[/] [dim]({card.id}) — /help for commands, /quit to leave[/]"
        )
        if not await rt.history.recent(scope, conversation, 1):
            started = await rt.start_conversation(scope, conversation, user_name=name)
            if started is not None:
                console.print(f"[bold cyan]{card.name}:[/] {started[1].content}", highlight=False)
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                break
            line = line.strip()
            if not line:
                continue
            if line in {"/quit", "/exit"}:
                break
            if line.startswith("/"):
                await _run_command(rt, scope, line, conversation, name, card.id)
                continue
            await _reply(rt, Turn(user_id, card.id, line, conversation, "cli", name), card.name)


async def _reply(rt: Any, turn: Turn, speaker: str) -> None:
    """Stream one reply. The speaker's name is printed with the first chunk, so a
    turn that fails before the model answers shows only the error line."""
    started = False
    try:
        async for chunk in rt.stream(turn):
            if not started:
                console.print(f"[bold cyan]{escape(speaker)}:[/] ", end="")
                started = True
            console.print(chunk, end="", markup=False, highlight=False, soft_wrap=True)
    except PersonaeError as exc:
        if started:
            console.print()
        show_error(exc)
        return
    if started:
        console.print()


async def _run_command(
    rt: Any, scope: Scope, line: str, conversation: str, name: str, persona: str
) -> None:
    try:
        command, args = rt.commands.parse(line)
        ctx = CommandContext(
            rt,
            scope,
            "cli",
            args,
            visible_id=persona,
            conversation=conversation,
            user_name=name,
        )
        result = await rt.commands.run(command, ctx)
        if result.needs_confirmation:
            answer = await asyncio.to_thread(input, f"{result.text} [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                console.print("Cancelled.")
                return
            ctx = dataclasses.replace(ctx, confirmed=True)
            result = await rt.commands.run(command, ctx)
        console.print(result.text, markup=False, highlight=False)
        if result.attachment:
            filename, content = result.attachment
            await asyncio.to_thread(Path(filename).write_bytes, content)
            console.print(f"Saved {filename}.")
    except CommandError as exc:
        errors.print(escape(str(exc)), highlight=False)


@personas_app.command("list")
def personas_list() -> None:
    """List the personas you can talk to."""

    async def go() -> None:
        async with runtime() as rt:
            table = Table("id", "name", "source", "tags")
            for entry in await rt.personas.list(await cli_user(rt, None)):
                table.add_row(entry.id, entry.card.name, entry.source, ", ".join(entry.card.tags))
            console.print(table)

    run(go())


@personas_app.command("show")
def personas_show(persona_id: str) -> None:
    """Show one persona's card."""

    async def go() -> None:
        from personae.core.cards import card_to_dict

        async with runtime() as rt:
            card = await rt.personas.get(persona_id, viewer=await cli_user(rt, None))
            console.print_json(json.dumps(card_to_dict(card), ensure_ascii=False))

    run(go())


@personas_app.command("import")
def personas_import(
    file: Path,
    shared: Annotated[bool, typer.Option(help="Visible to everyone.")] = True,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the persona with the same id.")
    ] = False,
    new_id: Annotated[str | None, typer.Option("--id", help="Store under this id.")] = None,
) -> None:
    """Import a Character Card (V1/V2/V3; JSON, PNG or .charx) as a system persona.
    An id already in use gets a new one (mara-2) unless --replace is given; the
    card's picture becomes the persona's avatar."""

    async def go() -> None:
        from personae.core import avatars

        card, picture = load_card_and_picture(file)
        if new_id:
            try:
                card = PersonaCard.model_validate({**card.model_dump(), "id": new_id})
            except ValueError:
                raise CardError(
                    f"--id {new_id!r} is not a persona id: use 1-64 lowercase letters, "
                    "digits, '-' or '_'."
                ) from None
        data_dir = settings().data_dir
        avatar = (
            await asyncio.to_thread(avatars.store_avatar, data_dir, picture) if picture else None
        )
        card = card.with_settings(avatar=avatar)
        async with runtime() as rt:
            old = None
            if replace:
                same_id = await rt.personas.store.with_id(card.id)
                entry = next((s for s in same_id if s.owner_id is None), None)
                old = parse_card_json(entry.card).settings.avatar if entry else None
            try:
                result = await rt.personas.import_card(
                    card, owner_id=None, shared=shared, replace=replace
                )
            except PersonaeError:
                avatars.remove_avatar(data_dir, avatar)
                raise
        if old and old != avatar:
            avatars.remove_avatar(data_dir, old)
        stored = result.card
        console.print(f"Imported {stored.name} as [bold]{stored.id}[/].", highlight=False)
        if result.renamed:
            console.print(
                f"The id {card.id!r} was already taken, so this is a new persona; "
                "use --replace to replace that one.",
                highlight=False,
            )
        for note in result.notes:
            console.print(note, highlight=False)

    run(go())


@personas_app.command("delete")
def personas_delete(persona_id: str) -> None:
    """Delete an imported (system) persona. Built-in personas from plugins or card
    folders cannot be deleted; an import that overrode one brings it back."""

    async def go() -> None:

        async with runtime() as rt:
            same_id = await rt.personas.store.with_id(persona_id)
            stored = next((s for s in same_id if s.owner_id is None), None)
            if stored is None:
                source = rt.personas.system_source(persona_id)
                if source:
                    raise CommandError(
                        f"{persona_id!r} is built in ({source}); it cannot be deleted."
                    )
                raise CommandError(f"No imported persona {persona_id!r} to delete.")
            entry = await rt.personas.by_key(stored.key)
            # The card, its avatar and, unless a built-in keeps the id, everything
            # every user stored under it.
            await rt.delete_persona(entry)
            console.print(f"Deleted {persona_id}.", highlight=False)
            source = rt.personas.system_source(persona_id)
            if source:
                console.print(f"The built-in {persona_id} ({source}) is back.", highlight=False)

    run(go())


@personas_app.command("export")
def personas_export(persona_id: str, file: Path) -> None:
    """Export a persona as a Character Card (.json; .png or .charx with its picture)."""

    async def go() -> None:
        from personae.core import avatars

        async with runtime() as rt:
            card = await rt.personas.get(persona_id, viewer=await cli_user(rt, None))
        picture = avatars.read_avatar(settings().data_dir, card.settings.avatar)
        save_card(card.with_settings(avatar=None), file, image=picture)
        console.print(f"Wrote {file}.")

    run(go())


@db_app.command("migrate")
def db_migrate(
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Do not back the database up first.")
    ] = False,
) -> None:
    """Apply pending database migrations (backing the database up first)."""

    async def go() -> None:
        from personae.storage import Database
        from personae.storage.database import describe

        if not no_backup:
            from personae.portability.backup import backup_before_migrate

            saved = await backup_before_migrate(settings())
            if saved is not None:
                console.print(f"Backed the database up to {saved}.", highlight=False)
        db = Database(settings().db_url)
        applied = await db.migrate()
        where = describe(settings().db_url)
        if applied:
            console.print(f"Applied {', '.join(applied)} on {where}.")
        else:
            console.print(f"{where} is up to date.")

    run(go())


@app.command()
def doctor() -> None:
    """Check the configuration, the database and Ollama."""
    from personae.core.doctor import run_checks

    checks = run(run_checks(settings()))
    for check in checks:
        mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
        console.print(
            f"{mark} {check.name}: {escape(check.detail)}", highlight=False, soft_wrap=True
        )
        if check.fix:
            console.print(f"       -> {escape(check.fix)}", highlight=False, soft_wrap=True)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command()
def plugins() -> None:
    """List the loaded plugins with their versions and hooks."""
    from personae.core.plugins import create_plugin_manager

    try:
        pm = create_plugin_manager(settings())
    except PersonaeError as exc:
        fail(exc)
    table = Table("plugin", "version", "source", "hooks")
    for info in pm.plugins():
        table.add_row(info.name, info.version, info.source, ", ".join(info.hooks))
    console.print(table)


def _register_subcommands() -> None:
    """Commands that live next to the code they drive."""
    from personae.adapters.discord.cli import register as register_discord
    from personae.adapters.web.cli import register as register_web
    from personae.cli_config import register as register_config
    from personae.cli_lorebook import register as register_lorebook
    from personae.cli_plugins import register as register_plugins
    from personae.portability.cli import register as register_portability

    register_web(app)
    register_discord(app)
    register_plugins(app)
    register_portability(app)
    register_config(app)
    register_lorebook(personas_app)


_register_subcommands()


def main() -> None:
    try:
        app()
    except PersonaeError as exc:  # e.g. ConfigError raised while reading settings
        show_error(exc)
        sys.exit(1)
