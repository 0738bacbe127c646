"""The portability commands: ``personae db backup|restore``, ``personae memory
export|import|merge`` and ``personae import acore|mybella|rollback|runs``.

:func:`register` adds them to the ``personae`` app; long operations show rich
progress bars and end with a summary table.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
from rich.progress import Progress as RichBar
from rich.table import Table

from personae.portability.errors import PortabilityError
from personae.portability.writer import ImportResult

memory_app = typer.Typer(
    help="Export, import and merge what personas remember.", no_args_is_help=True
)
import_app = typer.Typer(
    help="Import from acore_bot and MyBella; roll imports back.", no_args_is_help=True
)

console = Console()
errors = Console(stderr=True, soft_wrap=True)

DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")]
PersonaMap = Annotated[
    list[str] | None,
    typer.Option("--persona-map", help="OLD=NEW: import the source's persona OLD as NEW."),
]
UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        help="A username, a user id or PLATFORM:ID (e.g. discord:1234); "
        "`personae users list` shows them.",
    ),
]


class BarProgress:
    """Rich progress bars on stderr, one per step."""

    def __init__(self) -> None:
        self._bars = RichBar(
            TextColumn("{task.description:>14}"), BarColumn(), MofNCompleteColumn(),
            console=errors, transient=True,
        )  # fmt: skip
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> BarProgress:
        self._bars.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bars.stop()

    def start(self, task: str, total: int) -> None:
        self._tasks[task] = self._bars.add_task(task, total=total)

    def advance(self, task: str, amount: int = 1) -> None:
        self._bars.advance(self._tasks[task], amount)


def _cli() -> Any:
    from personae import cli

    return cli


def show_import(result: ImportResult) -> None:
    verb = "Would import" if result.dry_run else "Imported"
    table = Table("records", "new", "already there", "repeated in source", title=f"{verb}")
    for name, count in result.counts.items():
        table.add_row(
            name.replace("_", " "), str(count.new), str(count.existing), str(count.duplicate)
        )
    console.print(table)
    if result.problems:
        problems = Table(
            "source", "not imported, or imported elsewhere",
            title=f"{len(result.problems)} problem(s) and note(s)",
        )  # fmt: skip
        for problem in result.problems:
            problems.add_row(escape(problem.source), escape(problem.reason))  # no markup
        console.print(problems)
    console.print(f"Read {result.files_read} file(s) from {result.source}.", highlight=False)
    if result.dry_run:
        console.print("Dry run: nothing was written. Run again without --dry-run to import.")
    elif result.run_id:
        console.print(
            f"Import run [bold]{result.run_id}[/] verified; undo it with "
            f"`personae import rollback {result.run_id}`.",
            highlight=False,
        )
    else:
        console.print("Nothing new to import: the database already holds all of it.")


async def _import(batch: Any, dry_run: bool) -> ImportResult:
    from personae.portability.connection import connected
    from personae.portability.writer import run_import

    settings = _cli().settings()
    async with connected(settings):
        with BarProgress() as bars:
            return await run_import(settings, batch, dry_run=dry_run, progress=bars)


# -- db backup / restore --------------------------------------------------------------


def db_backup(
    path: Path,
    method: Annotated[
        str, typer.Option(help="auto | native (SQLite backup API, pg_dump) | logical (JSONL).")
    ] = "auto",
) -> None:
    """Back the database up to PATH (SQLite online backup, pg_dump, or logical JSONL)."""
    from personae.portability.backup import backup

    if method not in {"auto", "native", "logical"}:
        raise typer.BadParameter("choose auto, native or logical", param_hint="--method")
    if not path.parent.is_dir():
        _cli().fail(
            f"The folder {path.parent} does not exist; create it first or back up "
            "into an existing folder."
        )
    result = _cli().run(backup(_cli().settings(), path, method=method))  # type: ignore[arg-type]
    console.print(
        f"Backed up to {result.path} ({result.method}, {result.size} bytes).", highlight=False
    )


def db_restore(
    path: Path,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    safety_backup: Annotated[
        bool, typer.Option(help="Back the current database up first (under data/backups).")
    ] = True,
) -> None:
    """Replace the database's contents with the backup at PATH."""
    from personae.portability.backup import restore

    if not yes and not typer.confirm(f"Replace everything in the database with {path}?"):
        raise typer.Exit(1)
    kind, saved = _cli().run(restore(_cli().settings(), path, safety_backup=safety_backup))
    if saved:
        console.print(f"The database as it was is saved at {saved}.", highlight=False)
    console.print(f"Restored {path} ({kind}).", highlight=False)


# -- memory -----------------------------------------------------------------------


@memory_app.command("export")
def memory_export(
    path: Annotated[str, typer.Argument(help="Output file (.jsonl), or - for standard output.")],
    user: UserOption = None,
    persona: Annotated[str | None, typer.Option(help="Only this persona's memory.")] = None,
) -> None:
    """Export memory items (everyone's, one user's and/or one persona's) as JSON Lines."""
    from personae.portability import jsonl
    from personae.portability.connection import connected, find_user

    async def go() -> list[str]:
        settings = _cli().settings()
        async with connected(settings):
            user_id = await find_user(user) if user else None
            lines = await jsonl.export_lines(user_id, persona)
        if persona is not None and len(lines) == 1:
            await _check_persona(settings, persona)
        return lines

    lines = _cli().run(go())
    if path == "-":
        jsonl.write_lines(lines, sys.stdout)
        return
    try:
        with Path(path).open("w", encoding="utf-8") as handle:
            jsonl.write_lines(lines, handle)
    except OSError as exc:
        _cli().fail(f"Cannot write {path}: {exc.strerror or exc}.")
    errors.print(f"Exported {len(lines) - 1} memory item(s) to {path}.", highlight=False)


async def _check_persona(settings: Any, persona_id: str) -> None:
    """Raise a PortabilityError when no persona ``persona_id`` exists (an export
    naming a persona that has no memory is only empty when the persona exists)."""
    from personae.core.doctor import persona_inventory

    inventory = await persona_inventory(settings)
    if persona_id not in {p.persona_id for p in inventory.personas}:
        raise PortabilityError(
            f"No persona {persona_id!r}. `personae personas list` shows the personas."
        )


@memory_app.command("import")
def memory_import(path: Path, dry_run: DryRun = False) -> None:
    """Import a JSON Lines memory export (all or nothing; a second run changes nothing)."""
    from personae.portability import jsonl

    cli = _cli()
    try:
        batch = jsonl.read_file(path)
    except PortabilityError as exc:
        cli.fail(exc)
    show_import(cli.run(_import(batch, dry_run)))


@memory_app.command("merge")
def memory_merge(
    source: Annotated[str, typer.Option("--from", help="The persona whose memory to merge.")],
    target: Annotated[str, typer.Option("--into", help="The persona that gains it.")],
    user: UserOption = None,
    apply: Annotated[bool, typer.Option("--apply", help="Write (default: dry run).")] = False,
) -> None:
    """Merge what persona A knows into persona B with learning's consolidation rules.
    Without --apply this is a dry run that shows what would change."""
    from personae.portability.connection import connected, find_user
    from personae.portability.merge import merge_memory

    async def go() -> Any:
        settings = _cli().settings()
        async with connected(settings):
            user_id = await find_user(user) if user else None
            with BarProgress() as bars:
                return await merge_memory(
                    settings, source, target, user_id=user_id, dry_run=not apply, progress=bars
                )

    result = _cli().run(go())
    verb = "Would merge" if result.dry_run else "Merged"
    table = Table("user", "offered", "added", "already known", "made precise", "retired",
                  "evicted", "refused")  # fmt: skip
    table.title = f"{verb} {source} -> {target}"
    for scope in result.scopes:
        table.add_row(str(scope.user_id), str(scope.offered), str(len(scope.added)),
                      str(scope.duplicates), str(len(scope.updated)), str(scope.retired),
                      str(len(scope.evicted)), str(scope.refused))  # fmt: skip
    console.print(table)
    if result.dry_run:
        console.print("Dry run: nothing was written. Add --apply to merge.")


# -- import -------------------------------------------------------------------------


@import_app.command("acore")
def import_acore(
    path: Annotated[Path, typer.Argument(help="The acore_bot folder (or its data folder).")],
    dry_run: DryRun = False,
    persona_map: PersonaMap = None,
) -> None:
    """Import acore_bot's user profiles (as memory), chat history, personas and lorebooks."""
    from personae.portability.importers.acore import read_acore
    from personae.portability.importers.common import parse_persona_map

    cli = _cli()

    async def go() -> ImportResult:
        batch = read_acore(
            path,
            persona_map=parse_persona_map(persona_map),
            default_persona=cli.settings().default_persona,
        )
        return await _import(batch, dry_run)

    show_import(cli.run(go()))


@import_app.command("mybella")
def import_mybella(
    database: Annotated[Path, typer.Argument(help="MyBella's SQLite database file.")],
    dry_run: DryRun = False,
    persona_map: PersonaMap = None,
    persona: Annotated[
        str | None,
        typer.Option(help="The persona that gets rows naming none (default: the default one)."),
    ] = None,
) -> None:
    """Import MyBella's personas, chat messages, conversation summaries, learned
    preferences, settings and onboarding answers."""
    from personae.portability.importers.common import parse_persona_map
    from personae.portability.importers.mybella import read_mybella

    cli = _cli()

    async def go() -> ImportResult:
        batch = read_mybella(
            database,
            persona_map=parse_persona_map(persona_map),
            default_persona=cli.settings().default_persona,
            persona=persona,
        )
        return await _import(batch, dry_run)

    show_import(cli.run(go()))


@import_app.command("rollback")
def import_rollback(run_id: str) -> None:
    """Delete exactly what import run RUN_ID created (in one transaction)."""
    from personae.portability.connection import connected
    from personae.portability.manifest import rollback

    async def go() -> Any:
        settings = _cli().settings()
        async with connected(settings):
            return await rollback(settings, run_id)

    manifest = _cli().run(go())
    table = Table("records", "removed", title=f"Rolled back {run_id}")
    for name, ids in manifest.created.items():
        kept = len(manifest.rollback_kept.get(name, []))
        table.add_row(name.replace("_", " "), str(len(ids) - kept))
    console.print(table)
    for name, ids in manifest.rollback_kept.items():
        if ids:
            console.print(
                f"Kept {len(ids)} {name} that gained data after the import: {ids}", highlight=False
            )


@import_app.command("runs")
def import_runs() -> None:
    """List recorded import runs."""
    from personae.portability.manifest import runs

    table = Table("run", "kind", "status", "rows created", "source")
    for run in runs(_cli().settings()):
        table.add_row(run.run_id, run.kind, run.status, str(run.created_total), run.source)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``db backup|restore`` to the app's ``db`` group and the ``memory`` and
    ``import`` groups to ``app``."""
    groups = {info.name: info.typer_instance for info in app.registered_groups}
    db_app = groups.get("db")
    if db_app is None:
        raise RuntimeError("the personae app has no 'db' group to add backup/restore to")
    db_app.command("backup")(db_backup)
    db_app.command("restore")(db_restore)
    app.add_typer(memory_app, name="memory")
    app.add_typer(import_app, name="import")
