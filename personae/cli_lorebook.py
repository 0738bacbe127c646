"""``personae personas lorebook``: attach a SillyTavern World Info file (or a
character book) to a persona, export it back, or detach it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from personae.core.lorebook import parse_book
from personae.core.lorebook_files import (
    LorebookFormat,
    attach_lorebook,
    detach_lorebook,
    dump_lorebook,
    load_lorebook,
)


def register(personas_app: typer.Typer) -> None:
    lorebook_app = typer.Typer(
        help="Attach, export and detach a persona's lorebook (World Info).",
        no_args_is_help=True,
    )
    personas_app.add_typer(lorebook_app, name="lorebook")

    @lorebook_app.command("attach")
    def attach(
        persona_id: str,
        file: Path,
        merge: Annotated[
            bool, typer.Option("--merge", help="Add to the persona's own lorebook.")
        ] = False,
    ) -> None:
        """Attach a lorebook file (SillyTavern World Info JSON, a character book, or
        a card's book) to a persona; it replaces the persona's lorebook unless --merge."""
        from personae import cli

        async def go() -> None:
            book = load_lorebook(file)
            async with cli.runtime() as rt:
                entry = await rt.personas.entry(persona_id, viewer=await cli.cli_user(rt, None))
                card = attach_lorebook(entry.card, book, merge=merge)
                await rt.personas.save(card, owner_id=entry.owner_id, shared=entry.shared)
            count = len(parse_book(card.character_book).entries)
            cli.console.print(
                f"{card.name} ({card.id}) now has a lorebook of {count} entries.", highlight=False
            )
            if entry.is_system and entry.source != "database":
                cli.console.print(
                    f"The built-in {card.id} is now overridden by a stored copy; "
                    f"`personae personas delete {card.id}` brings the built-in back.",
                    highlight=False,
                )

        cli.run(go())

    @lorebook_app.command("export")
    def export(
        persona_id: str,
        file: Path,
        fmt: Annotated[
            str, typer.Option("--format", help="world_info (SillyTavern) or character_book.")
        ] = "world_info",
    ) -> None:
        """Write a persona's lorebook to a file."""
        from personae import cli

        if fmt not in ("world_info", "character_book"):
            raise typer.BadParameter("--format must be world_info or character_book")
        chosen: LorebookFormat = "world_info" if fmt == "world_info" else "character_book"

        async def go() -> None:
            async with cli.runtime() as rt:
                card = await rt.personas.get(persona_id, viewer=await cli.cli_user(rt, None))
            await asyncio.to_thread(file.write_bytes, dump_lorebook(card, chosen))
            cli.console.print(f"Wrote {file}.", highlight=False)

        cli.run(go())

    @lorebook_app.command("detach")
    def detach(persona_id: str) -> None:
        """Remove a persona's lorebook."""
        from personae import cli

        async def go() -> None:
            async with cli.runtime() as rt:
                entry = await rt.personas.entry(persona_id, viewer=await cli.cli_user(rt, None))
                card = detach_lorebook(entry.card)
                await rt.personas.save(card, owner_id=entry.owner_id, shared=entry.shared)
            cli.console.print(f"{card.name} has no lorebook now.", highlight=False)

        cli.run(go())
