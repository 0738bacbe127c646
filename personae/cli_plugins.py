"""``personae plugin new NAME`` (scaffold a plugin package) and, through
:func:`register`, every command this module family adds to the ``personae`` app
(``models`` lives in :mod:`personae.cli_models`)."""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated

import typer

from personae.core.errors import PersonaeError

plugin_app = typer.Typer(help="Write plugins for personae.", no_args_is_help=True)

NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,30}")
TEMPLATE_SUFFIX = ".tmpl"


def register(app: typer.Typer) -> None:
    """Add ``personae plugin new`` and ``personae models list|pull`` to ``app``."""
    from personae import cli_models

    app.add_typer(plugin_app, name="plugin")
    cli_models.register(app)


class ScaffoldError(PersonaeError):
    """The user sees why the plugin package could not be written."""


def placeholders(name: str) -> dict[str, str]:
    """The template placeholders for plugin ``name``: ``mood`` -> entry point
    ``mood``, package ``personae_mood``, distribution ``personae-mood``."""
    if not NAME_RE.fullmatch(name):
        raise ScaffoldError(
            f"{name!r} is not a usable plugin name: use 1-31 lowercase letters, digits, "
            "'-' or '_', starting with a letter (it becomes the /command too)."
        )
    module = name.replace("-", "_")
    return {
        "__NAME__": name,
        "__MODULE__": module,
        "__PACKAGE__": f"personae_{module}",
        "__DIST__": f"personae-{name.replace('_', '-')}",
    }


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _templates(
    root: Traversable, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], str]]:
    found: list[tuple[tuple[str, ...], str]] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            found.extend(_templates(entry, (*prefix, entry.name)))
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            found.append(((*prefix, entry.name), entry.read_text(encoding="utf-8")))
    return found


def scaffold_plugin(name: str, directory: Path) -> Path:
    """Write a new plugin package for ``name`` under ``directory`` (the layout of
    examples/personae-mood: pyproject with the entry point, ``src/`` package,
    README, tests using personae's fixtures). Returns the package's folder."""
    values = placeholders(name)
    target = directory / values["__DIST__"]
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or folder.")
    for parts, text in _templates(files("personae") / "scaffold" / "plugin"):
        relative = Path(*(_fill(p, values) for p in parts))
        path = target / relative.with_name(relative.name.removesuffix(TEMPLATE_SUFFIX))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(text, values), encoding="utf-8")
    return target


@plugin_app.command("new")
def plugin_new(
    name: Annotated[str, typer.Argument(help="The plugin's name, e.g. 'mood'.")],
    directory: Annotated[
        Path, typer.Option("--dir", "-d", help="Where to create the package.")
    ] = Path("."),
) -> None:
    """Create a plugin package: pyproject with the entry point, code, README, tests."""
    from personae.cli import console, fail

    try:
        target = scaffold_plugin(name, directory)
    except (ScaffoldError, OSError) as exc:
        fail(exc)
    lines = [f"Created {target}"]
    lines += [f"  {p.relative_to(target)}" for p in sorted(target.rglob("*")) if p.is_file()]
    lines.append(f"Next: cd {target} && pip install -e '.[test]' && python -m pytest")
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
