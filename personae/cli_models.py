"""``personae models``: the Ollama models installed, which personas use them, and
pulling new ones with a progress bar."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

models_app = typer.Typer(
    help="The Ollama models installed, and which personas use them.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add ``personae models list|pull`` to ``app``."""
    app.add_typer(models_app, name="models")


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.0f} MB"


@models_app.command("list")
def models_list() -> None:
    """List the installed models and the personas that use each (missing ones too)."""
    from personae.cli import console, errors, run, settings
    from personae.core.doctor import persona_inventory
    from personae.core.llm.ollama import OllamaBackend, normalize_model_name

    async def go() -> None:
        config = settings()
        inventory = await persona_inventory(config)
        async with OllamaBackend(config.ollama) as backend:
            installed = await backend.list_models()
        users = inventory.by_model()
        default = normalize_model_name(config.ollama.model)
        table = Table("model", "size", "personas")
        for model in installed:
            name = normalize_model_name(model.name)
            label = f"{name} (default)" if name == default else name
            table.add_row(label, _size(model.size), _persona_list(users.pop(name, [])))
        for name, personas in sorted(users.items()):
            label = f"{name} (default)" if name == default else name
            table.add_row(label, "[red]not installed[/]", _persona_list(personas))
        console.print(table)
        if inventory.note:
            errors.print(f"Note: {inventory.note}", markup=False, highlight=False)
        if users:
            missing = " ".join(sorted(users))
            console.print(f"Pull the missing model(s) with `personae models pull {missing}`.")

    run(go())


def _persona_list(personas: list[Any]) -> str:
    return ", ".join(p.persona_id for p in personas) or "-"


@models_app.command("pull")
def models_pull(
    names: Annotated[list[str], typer.Argument(help="Model name(s), e.g. llama3.2:1b.")],
) -> None:
    """Download models onto the Ollama server, showing Ollama's progress."""
    from personae.cli import console, run, settings
    from personae.core.llm.ollama import OllamaBackend

    async def go() -> None:
        async with OllamaBackend(settings().ollama) as backend:
            for name in names:
                await _pull(backend, name, console)
                console.print(f"Pulled [bold]{name}[/].")

    run(go())


async def _pull(backend: Any, name: str, console: Any) -> None:
    """Drive a rich progress bar from Ollama's pull progress: one bar per layer
    (digest) with a known size; every other status is printed as a line."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bars: dict[str, TaskID] = {}
        last_status = ""
        async for part in backend.pull(name):
            status = str(part.get("status") or "")
            digest, total = part.get("digest"), part.get("total")
            if digest and total:
                bar = bars.get(digest)
                if bar is None:
                    bar = bars[digest] = progress.add_task(status or digest[:19], total=total)
                progress.update(bar, completed=part.get("completed") or 0)
            elif status and status != last_status:
                progress.console.print(status, highlight=False)
            last_status = status
