"""pytest fixtures for plugin authors, loaded automatically when personae is
installed (a ``pytest11`` entry point, as datasette does).

- ``personae_fake_ollama``: a started :class:`~personae.testing.fake_ollama.FakeOllama`
  on a loopback port, speaking Ollama's HTTP protocol; script it with
  ``reply_with``/``enqueue`` and read ``requests``.
- ``personae_settings``: settings with a temporary SQLite database and data folder,
  pointing at the fake Ollama.
- ``personae_runtime``: a started runtime with the built-in plugins and every
  installed plugin (entry points in the ``personae`` group), stopped after the test.
- ``personae_runtime_factory``: ``await personae_runtime_factory(plugins=[...],
  disabled_plugins=[...], entry_points=False, **settings)`` for a runtime made to
  measure; each call stops the runtime the previous call returned.

Pair them with the helpers in :mod:`personae.testing` (``run_turn``,
``run_command``, ``stored_messages``, ``memory_items``, ``plugin_state``).

The fixtures are async. With pytest-asyncio in ``asyncio_mode = "auto"`` tests
need nothing more; in strict mode mark tests with ``@pytest.mark.asyncio``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from personae.core.plugins import create_plugin_manager
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.testing.fake_ollama import FakeOllama
from personae.testing.helpers import register_fake, unregister_fake

try:  # async fixtures that also work in pytest-asyncio's strict mode
    from pytest_asyncio import fixture as async_fixture
except ImportError:  # pragma: no cover - without pytest-asyncio nothing async runs anyway
    async_fixture = pytest.fixture  # type: ignore[assignment]


class RuntimeFactory(Protocol):
    """The ``personae_runtime_factory`` fixture's value."""

    async def __call__(
        self,
        *,
        plugins: Sequence[object] | Mapping[str, object] = (),
        disabled_plugins: Sequence[str] = (),
        entry_points: bool = True,
        **settings: Any,
    ) -> Runtime: ...


def plugin_name(plugin: object) -> str:
    """The name a plugin object is registered under when the test does not give one:
    a module's last dotted component, else the class name."""
    module_name = getattr(plugin, "__name__", None)
    if isinstance(module_name, str):
        return module_name.rsplit(".", 1)[-1]
    return type(plugin).__name__


@async_fixture
async def personae_fake_ollama() -> AsyncIterator[FakeOllama]:
    """A loopback fake Ollama (models ``llama3.2`` and ``nomic-embed-text``) that
    answers "You said: ..." until scripted otherwise."""
    async with FakeOllama() as fake:
        register_fake(fake)
        try:
            yield fake
        finally:
            unregister_fake(fake)


@pytest.fixture
def personae_settings(tmp_path: Path, personae_fake_ollama: FakeOllama) -> Settings:
    """Settings for one test: SQLite in ``tmp_path``, the fake Ollama, no retries."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite://{tmp_path / 'personae.db'}",
        ollama={"host": personae_fake_ollama.url, "retries": 0, "read_timeout": 10.0},
        runtime={"shutdown_grace_seconds": 10.0},
    )


@async_fixture
async def personae_runtime_factory(
    personae_settings: Settings,
) -> AsyncIterator[RuntimeFactory]:
    """Start runtimes made to measure:

    - ``plugins``: extra plugin objects (modules or instances) to register, as a
      list or as ``{name: plugin}``; one already loaded from its entry point is not
      registered twice.
    - ``disabled_plugins``: plugin names not to load (``settings.disabled_plugins``).
    - ``entry_points``: load installed plugins (default True).
    - any other keyword replaces that setting (``persona_dirs=[...]``, ``plugin_settings={...}``).

    Runtimes in one process share the ORM's connections, so each call stops the
    runtime the previous call returned; the last one is stopped after the test.
    """
    current: list[Runtime] = []

    async def stop_current() -> None:
        while current:
            await current.pop().stop()

    async def make(
        *,
        plugins: Sequence[object] | Mapping[str, object] = (),
        disabled_plugins: Sequence[str] = (),
        entry_points: bool = True,
        **settings: Any,
    ) -> Runtime:
        await stop_current()
        changes = dict(settings)
        if disabled_plugins:
            changes["disabled_plugins"] = [*personae_settings.disabled_plugins, *disabled_plugins]
        configured = (
            Settings(**{**personae_settings.model_dump(), **changes})
            if changes
            else personae_settings
        )
        manager = create_plugin_manager(configured, load_entry_points=entry_points)
        named = (
            plugins.items()
            if isinstance(plugins, Mapping)
            else ((plugin_name(p), p) for p in plugins)
        )
        for name, plugin in named:
            if not manager.pm.is_registered(plugin) and name not in configured.disabled_plugins:
                manager.add(plugin, name=name, source="test")
        manager.check()
        runtime = Runtime(configured, plugins=manager)
        await runtime.start()
        current.append(runtime)
        return runtime

    try:
        yield make
    finally:
        await stop_current()


@async_fixture
async def personae_runtime(personae_runtime_factory: RuntimeFactory) -> Runtime:
    """A started runtime with the built-in and every installed plugin."""
    return await personae_runtime_factory()
