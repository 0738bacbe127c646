"""The ``personae discord`` command. ``register(app)`` adds it to the CLI."""

from __future__ import annotations

from typing import Annotated

import typer


def _shard_ids(value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter("shard ids are numbers separated by commas, e.g. 0,1") from None


def discord_command(
    shard_count: Annotated[
        int | None, typer.Option(help="Total shards across all processes (default: ask Discord).")
    ] = None,
    shard_ids: Annotated[
        str | None,
        typer.Option(help="The shards this process runs, e.g. 0,1 (needs --shard-count)."),
    ] = None,
) -> None:
    r"""Run the Discord bot (token from PERSONAE_DISCORD__TOKEN or token under \[discord]
    in the settings file)."""
    from personae import cli
    from personae.adapters.discord.bot import bot_token, run_discord
    from personae.adapters.discord.settings import DiscordSettings
    from personae.core.runtime import Runtime

    base = cli.settings()
    changes = {
        key: value
        for key, value in {"shard_count": shard_count, "shard_ids": _shard_ids(shard_ids)}.items()
        if value is not None
    }
    try:
        discord = DiscordSettings.model_validate({**base.discord.model_dump(), **changes})
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = base.model_copy(update={"discord": discord})

    async def go() -> None:
        bot_token(settings)  # fail before starting anything
        async with Runtime(settings) as runtime:
            await run_discord(runtime, settings)

    cli.run(go())


def register(app: typer.Typer) -> None:
    """Add ``personae discord`` to ``app``."""
    app.command("discord")(discord_command)
