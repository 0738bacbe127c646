"""``personae config``: the settings file, documented from the settings models.

``personae config defaults`` writes every key of every settings model (core,
adapters, built-in plugins) with its default and the field's docstring as a
comment; ``config/personae.toml`` is that output, and a test keeps the two the
same. ``personae config show`` writes the settings in effect (file and
environment) the same way, with secrets masked.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, SecretStr

from personae.core.settings import Settings

config_app = typer.Typer(help="The settings file and the settings in effect.", no_args_is_help=True)


@dataclass(frozen=True, slots=True)
class PluginTable:
    """A built-in plugin's ``[plugin_settings.NAME]`` table: its model, and the
    plugin's own loader (which validates the table and fills in defaults)."""

    model: type[BaseModel]
    load: Callable[[Settings], BaseModel]


def plugin_tables() -> dict[str, PluginTable]:
    """The settings table of each built-in plugin (imported only when needed: the
    plugins are not loaded for every ``personae`` command)."""
    from personae.plugins.curiosity.settings import CuriositySettings, load_curiosity_settings
    from personae.plugins.profile.settings import ProfileSettings, load_profile_settings
    from personae.plugins.voice.settings import VoiceSettings, load_voice_settings

    return {
        "profile": PluginTable(ProfileSettings, load_profile_settings),
        "curiosity": PluginTable(CuriositySettings, load_curiosity_settings),
        "voice": PluginTable(VoiceSettings, load_voice_settings),
    }


SHIPPED: dict[tuple[str, ...], Any] = {
    ("ollama", "options"): {"temperature": 0.8},
}
"""Values the shipped file sets on purpose, other than the model's default."""

EXAMPLES: dict[tuple[str, ...], Any] = {
    ("database_url",): "postgres://personae@127.0.0.1:5432/personae",
    ("ollama", "embed_model"): "nomic-embed-text",
    ("ollama", "num_ctx"): 8192,
    ("discord", "token"): "...",
    ("discord", "shard_count"): 2,
    ("discord", "shard_ids"): [0],
    ("discord", "default_persona"): "sage",
    ("discord", "public_base_url"): "https://bots.example",
    ("discord", "state_dir"): "data/discord",
    ("discord", "api_base"): "https://discord.com/api/v10",
    ("discord", "gateway_url"): "wss://gateway.discord.gg",
    ("plugin_settings", "profile", "model"): "llama3.2",
    ("plugin_settings", "profile", "embed_model"): "nomic-embed-text",
    ("plugin_settings", "curiosity", "model"): "llama3.2",
    ("plugin_settings", "voice", "elevenlabs", "api_key"): "...",
}
"""What to show, commented out, for keys that are unset by default."""

HEADER = """\
# personae settings, every key with its default. Every key can also be set in the
# environment: PERSONAE_<KEY>, and PERSONAE_<TABLE>__<KEY> for keys inside a table
# (e.g. PERSONAE_OLLAMA__HOST). The environment wins over this file.
#
# This file is written by `personae config defaults`; `personae config show`
# prints the settings in effect. Keys that are unset by default are commented out.
"""

WIDTH = 88


@dataclass(frozen=True, slots=True)
class Table:
    """One TOML table: its dotted path, a comment, and the model or dict it shows."""

    path: tuple[str, ...]
    model: type[BaseModel] | None
    values: Any


def render_defaults() -> str:
    """The documented settings file with every default (and the SHIPPED values)."""
    settings = Settings.model_construct(**_default_fields())
    plugins = {name: table.model() for name, table in plugin_tables().items()}
    for path, value in SHIPPED.items():
        _set(settings, path, value)
    return render(settings, plugins)


def render_current(settings: Settings) -> str:
    """The documented settings in effect, secrets masked."""
    plugins: dict[str, Any] = {name: t.load(settings) for name, t in plugin_tables().items()}
    for name, raw in settings.plugin_settings.items():
        plugins.setdefault(name, raw)  # a third-party plugin's table, as written
    return render(settings, plugins, mask=True)


def render(settings: Settings, plugins: dict[str, Any], *, mask: bool = False) -> str:
    """``settings`` and each plugin's settings as a commented TOML document."""
    lines = [HEADER]
    lines += _body(Settings, settings, (), mask, skip=frozenset({"plugin_settings"}))
    tables = plugin_tables()
    for name, value in plugins.items():
        model = tables[name].model if name in tables else None
        if model is None:
            lines += ["", f"[plugin_settings.{name}]"]
            lines += [f"{key} = {_toml(item)}" for key, item in value.items()]
        else:
            lines += _table(("plugin_settings", name), model, value, mask)
    return "\n".join(lines).rstrip("\n") + "\n"


def _default_fields() -> dict[str, Any]:
    """Settings' defaults, read from the models rather than the environment."""
    fields = {}
    for name, field in Settings.model_fields.items():
        fields[name] = field.get_default(call_default_factory=True)
    fields["database_url"] = None
    return fields


def _set(settings: Settings, path: tuple[str, ...], value: Any) -> None:
    target: Any = settings
    for part in path[:-1]:
        target = getattr(target, part)
    setattr(target, path[-1], value)


def _table(path: tuple[str, ...], model: type[BaseModel], value: Any, mask: bool) -> list[str]:
    lines = ["", f"[{'.'.join(path)}]"]
    lines += _comment(_class_doc(model))
    lines += _body(model, value, path, mask)
    return lines


def _body(
    model: type[BaseModel],
    value: Any,
    path: tuple[str, ...],
    mask: bool,
    skip: frozenset[str] = frozenset(),
) -> list[str]:
    """The keys of one table, then its subtables."""
    docs = field_docs(model)
    lines: list[str] = []
    subtables: list[list[str]] = []
    documented = False  # whether the previous key had a comment (then a blank line)
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        item = getattr(value, name)
        here = (*path, name)
        annotation = field.annotation
        if isinstance(item, BaseModel):
            subtables.append(_table(here, type(item), item, mask))
            continue
        if isinstance(item, dict) and any(isinstance(v, BaseModel) for v in item.values()):
            for key, entry in item.items():
                table = _table((*here, key), type(entry), entry, mask)
                table[2:2] = _comment(docs.get(name, "")) if key == next(iter(item)) else []
                subtables.append(table)
            continue
        if isinstance(item, dict) and annotation is not None and "dict" in str(annotation):
            table = ["", f"[{'.'.join(here)}]", *_comment(docs.get(name, ""))]
            table += [f"{key} = {_toml(entry)}" for key, entry in item.items()]
            if not item:
                table = [line if not line.startswith("[") else f"# {line}" for line in table]
                table += [f"# {key} = {_toml(v)}" for key, v in EXAMPLES.get(here, {}).items()]
            subtables.append(table)
            continue
        comment = _comment(docs.get(name, ""))
        if lines and (comment or documented):
            lines.append("")
        documented = bool(comment)
        lines += comment
        if item is None:
            example = EXAMPLES.get(here, "")
            lines.append(f"# {name} = {_toml(example)}")
        else:
            lines.append(f"{name} = {_toml(item, mask)}")
    if lines and path:
        lines.insert(0, "")
    return [*lines, *(line for table in subtables for line in table)]


def _toml(value: Any, mask: bool = False) -> str:
    """A TOML value (strings, numbers, booleans, paths, lists, inline tables)."""
    if isinstance(value, SecretStr):
        return '"**********"' if mask else json.dumps(value.get_secret_value())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str | Path):
        text = str(value)
        if mask and "://" in text:  # a database URL's password
            from personae.storage.database import describe

            text = describe(text)
        return json.dumps(text, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v, mask) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v, mask)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _comment(text: str) -> list[str]:
    """``text`` as ``# `` lines, paragraph by paragraph, RST literals as backticks."""
    lines: list[str] = []
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")
    for paragraph in text.split("\n\n"):
        flat = " ".join(paragraph.split())
        if flat:
            lines += textwrap.wrap(flat, WIDTH - 2, initial_indent="# ", subsequent_indent="# ")
    return lines


def _class_doc(model: type[BaseModel]) -> str:
    """The first paragraph of the model's own docstring (not an inherited one)."""
    doc = inspect.cleandoc(model.__dict__.get("__doc__") or "")
    return doc.split("\n\n")[0]


@cache
def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Each field's documentation: its ``description``, else the docstring under
    its definition in the class body (including inherited classes)."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, [*body[1:], None], strict=True):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    for name, field in model.model_fields.items():
        if field.description:
            docs[name] = field.description
    return docs


@config_app.command("defaults")
def config_defaults() -> None:
    """Print the settings file with every key, its default and what it does
    (``personae config defaults > config/personae.toml``)."""
    print(render_defaults(), end="")


@config_app.command("show")
def config_show() -> None:
    """Print the settings in effect (file and environment), secrets masked."""
    from personae.cli import settings

    print(render_current(settings()), end="")


def register(app: typer.Typer) -> None:
    """Add ``personae config defaults|show`` to ``app``."""
    app.add_typer(config_app, name="config")
