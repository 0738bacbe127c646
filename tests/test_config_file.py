"""``config/personae.toml`` documents every setting: it is what ``personae config
defaults`` writes from the settings models, names every field of every model, and
reads back as the defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from personae import cli
from personae.cli_config import SHIPPED, plugin_tables, render_defaults
from personae.core.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
SHIPPED_FILE = REPO / "config" / "personae.toml"
HEADER = re.compile(r"^(?:# )?\[([a-z0-9_.]+)\]$")
KEY = re.compile(r"^(?:# )?([a-z0-9_]+) = ")


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read the file alone: no PERSONAE_* variable may change what it means."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("PERSONAE_"):
            monkeypatch.delenv(name)


def field_paths(model: type[BaseModel], value: Any, prefix: tuple[str, ...]) -> set[str]:
    """Every dotted key of ``model`` (tables included), as a settings file spells it."""
    paths = set()
    for name in model.model_fields:
        item = getattr(value, name)
        here = (*prefix, name)
        paths.add(".".join(here))
        if isinstance(item, BaseModel):
            paths |= field_paths(type(item), item, here)
        elif isinstance(item, dict):
            for key, entry in item.items():
                if isinstance(entry, BaseModel):
                    paths |= field_paths(type(entry), entry, (*here, key))
    return paths


def keys_in(text: str) -> set[str]:
    """The dotted keys a settings file sets or shows commented out, tables included."""
    table: tuple[str, ...] = ()
    found: set[str] = set()
    for line in text.splitlines():
        if header := HEADER.match(line):
            table = tuple(header.group(1).split("."))
            found |= {".".join(table[:end]) for end in range(1, len(table) + 1)}
        elif key := KEY.match(line):
            found.add(".".join((*table, key.group(1))))
    return found


def test_the_shipped_file_is_what_config_defaults_writes() -> None:
    assert SHIPPED_FILE.read_text(encoding="utf-8") == render_defaults(), (
        "regenerate it: personae config defaults > config/personae.toml"
    )


def test_the_shipped_file_names_every_field_of_every_settings_model() -> None:
    settings = Settings()
    expected = field_paths(Settings, settings, ())
    for name, table in plugin_tables().items():
        expected |= field_paths(table.model, table.model(), ("plugin_settings", name))

    missing = expected - keys_in(SHIPPED_FILE.read_text(encoding="utf-8"))

    assert not missing


def test_every_builtin_plugin_with_settings_has_its_table() -> None:
    with_settings = {path.parent.name for path in (REPO / "personae/plugins").glob("*/settings.py")}

    assert with_settings == set(plugin_tables())


def test_the_shipped_file_reads_back_as_the_defaults() -> None:
    from_file = load_settings(SHIPPED_FILE)
    defaults = Settings()

    def core(settings: Settings) -> dict[str, Any]:
        dumped = settings.model_dump(exclude={"plugin_settings"})
        dumped["ollama"].pop("options")
        return dumped

    assert core(from_file) == core(defaults)
    assert from_file.ollama.options == SHIPPED[("ollama", "options")]
    for name, table in plugin_tables().items():
        assert table.load(from_file) == table.model(), name


def test_every_documented_field_has_a_comment_in_the_core_tables() -> None:
    """The keys a new user meets first each say what they do."""
    lines = SHIPPED_FILE.read_text(encoding="utf-8").splitlines()
    table = ""
    bare = []
    for index, line in enumerate(lines):
        if header := HEADER.match(line):
            table = header.group(1)
        elif KEY.match(line) and table in {"", "ollama", "memory", "runtime"}:
            if not lines[index - 1].startswith("# ") or KEY.match(lines[index - 1]):
                bare.append(f"{table}.{KEY.match(line).group(1)}")  # type: ignore[union-attr]

    assert not bare


def test_config_show_prints_the_settings_in_effect_with_secrets_masked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PERSONAE_DISCORD__TOKEN", "very-secret-token")
    monkeypatch.setenv("PERSONAE_OLLAMA__MODEL", "qwen2.5:7b")
    monkeypatch.setenv("PERSONAE_DATABASE_URL", "postgres://bot:hunter2@db:5432/personae")
    monkeypatch.setattr(cli, "_state", {})
    monkeypatch.chdir(tmp_path)

    shown = CliRunner().invoke(cli.app, ["config", "show"])

    assert shown.exit_code == 0, shown.output
    assert 'model = "qwen2.5:7b"' in shown.output
    assert 'token = "**********"' in shown.output
    assert "very-secret-token" not in shown.output
    assert 'database_url = "postgres://bot:***@db:5432/personae"' in shown.output
    assert "hunter2" not in shown.output
