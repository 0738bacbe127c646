"""Plugin loading, containment and the hook documentation."""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
from pathlib import Path

import pytest

from personae import hookimpl
from personae.core import hookspecs
from personae.core.errors import StartupError
from personae.core.plugins import DEFAULT_PLUGINS, PluginManager, create_plugin_manager
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.testing.fake_ollama import FakeOllama
from tests.conftest import make_settings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def hook_specs() -> list[tuple[str, list[str]]]:
    specs = []
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if hasattr(fn, "personae_spec"):
            specs.append((name, list(inspect.signature(fn).parameters)))
    return specs


def test_there_are_hooks_to_document() -> None:
    names = {name for name, _ in hook_specs()}
    assert {"personae_startup", "register_personas", "export_user_data"} <= names


@pytest.mark.parametrize("name,args", hook_specs())
def test_every_hook_is_documented_with_its_arguments(name: str, args: list[str]) -> None:
    docs = DOCS.read_text()
    assert re.search(rf"^### `{name}\({', '.join(args)}\)`$", docs, re.M), (
        f"docs/plugins.md needs a heading: ### `{name}({', '.join(args)})`"
    )


@pytest.fixture
def plain_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=f"sqlite://{tmp_path / 'db.sqlite'}")


def test_builtin_plugins_load_with_names_and_versions(plain_settings: Settings) -> None:
    pm = create_plugin_manager(plain_settings, load_entry_points=False)
    names = [info.name for info in pm.plugins()]
    assert sorted(names) == sorted(p.rsplit(".", 1)[-1] for p in DEFAULT_PLUGINS)
    assert all(info.version for info in pm.plugins())


def test_a_disabled_plugin_is_not_loaded(plain_settings: Settings) -> None:
    plain_settings.disabled_plugins = ["profile"]
    pm = create_plugin_manager(plain_settings, load_entry_points=False)
    assert "profile" not in [info.name for info in pm.plugins()]


def test_a_plugin_with_an_unknown_hook_fails_at_startup_naming_it() -> None:
    class Typo:
        @hookimpl
        def prompt_section(self, turn: object) -> None:  # missing "s"
            pass

    pm = PluginManager()
    pm.add(Typo(), name="typo-plugin")
    with pytest.raises(StartupError, match=r"typo-plugin.*prompt_section"):
        pm.check()


def test_a_hook_with_wrong_arguments_fails_at_registration_naming_the_plugin() -> None:
    class Wrong:
        @hookimpl
        def reply_complete(self, turn: object, not_an_argument: object) -> None:
            pass

    with pytest.raises(StartupError, match="wrong-args"):
        PluginManager().add(Wrong(), name="wrong-args")


def test_a_config_plugin_that_cannot_be_imported_names_itself(plain_settings: Settings) -> None:
    plain_settings.plugins = ["no_such_module_anywhere.plugin"]
    with pytest.raises(StartupError, match="plugin"):
        create_plugin_manager(plain_settings, load_entry_points=False)


def test_plugins_load_from_config_import_paths(
    plain_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_extra_plugin.py").write_text(
        textwrap.dedent(
            """
            from personae import hookimpl

            @hookimpl
            def register_commands(register):
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plain_settings.plugins = ["my_extra_plugin"]
    pm = create_plugin_manager(plain_settings, load_entry_points=False)
    info = {i.name: i for i in pm.plugins()}["my_extra_plugin"]
    assert info.source == "config" and info.hooks == ("register_commands",)
    sys.modules.pop("my_extra_plugin", None)


async def test_a_startup_hook_failure_stops_the_runtime_naming_the_plugin(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    class FailsToStart:
        @hookimpl
        async def personae_startup(self) -> None:
            raise OSError("cannot open the thing")

    settings = make_settings(tmp_path, fake_ollama, f"sqlite://{tmp_path / 'db.sqlite'}")
    pm = create_plugin_manager(settings, load_entry_points=False)
    pm.add(FailsToStart(), name="fragile")
    with pytest.raises(StartupError, match="fragile.*cannot open the thing"):
        await Runtime(settings, plugins=pm).start()


async def test_hooks_may_be_sync_or_async_and_run_in_pluggy_order() -> None:
    calls: list[str] = []

    class First:
        @hookimpl(tryfirst=True)
        def personae_shutdown(self) -> None:
            calls.append("first")

    class Last:
        @hookimpl(trylast=True)
        async def personae_shutdown(self) -> None:
            calls.append("last")

    pm = PluginManager()
    pm.add(Last(), name="last")
    pm.add(First(), name="first")
    await pm.call("personae_shutdown", runtime=None)
    assert calls == ["first", "last"]


async def test_trace_hooks_logs_each_call_with_plugin_and_duration(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Quiet:
        @hookimpl
        def personae_shutdown(self) -> None:
            pass

    monkeypatch.setenv("PERSONAE_TRACE_HOOKS", "1")
    pm = PluginManager()
    pm.add(Quiet(), name="quiet")
    with caplog.at_level("INFO", logger="personae.plugins"):
        await pm.call("personae_shutdown", runtime=None)
    assert re.search(r"hook personae_shutdown plugin=quiet [\d.]+ ms", caplog.text)
