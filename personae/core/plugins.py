"""Loading plugins and calling their hooks.

One :class:`pluggy.PluginManager` per runtime. Plugins come from, in order:
the built-in ``DEFAULT_PLUGINS``, the ``personae`` entry-point group (filtered by
the ``PERSONAE_PLUGINS`` allow-list when set) and ``settings.plugins`` (import
paths). ``settings.disabled_plugins`` names plugins not to load.
``PERSONAE_TRACE_HOOKS=1`` logs every hook call with plugin and duration.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy

from personae.core import hookspecs
from personae.core.errors import PersonaeError, StartupError

if TYPE_CHECKING:
    from personae.core.runtime import Runtime
    from personae.core.settings import Settings

log = logging.getLogger("personae.plugins")

ENTRY_POINT_GROUP = "personae"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "personae.plugins.ollama_backend",
    "personae.plugins.builtin_personas",
    "personae.plugins.history",
    "personae.plugins.profile",
    "personae.plugins.curiosity",
    "personae.plugins.core_commands",
    "personae.plugins.voice",
)


async def await_me_maybe(value: Any) -> Any:
    """A hook result may be a value, an awaitable, or a callable returning either."""
    if inspect.iscoroutine(value):  # what an ``async def`` hook returns: the usual case
        return await value
    if callable(value) and not inspect.isclass(value):
        value = value()
    if inspect.isawaitable(value):
        value = await value
    return value


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    version: str
    source: str  # "builtin", "entry point", "config"
    hooks: tuple[str, ...]


def _tracing() -> bool:
    return os.environ.get("PERSONAE_TRACE_HOOKS", "").lower() in {"1", "true", "yes", "on"}


def _short_name(module_path: str) -> str:
    return module_path.rsplit(".", 1)[-1]


def create_plugin_manager(settings: Settings, *, load_entry_points: bool = True) -> PluginManager:
    """Build the plugin manager for one runtime, loading every configured plugin.
    Raises :class:`StartupError` naming a plugin that cannot be imported, declares
    an unknown hook or implements a hook with wrong arguments."""
    pm = PluginManager()
    disabled = set(settings.disabled_plugins)
    from personae import __version__

    for path in DEFAULT_PLUGINS:
        name = _short_name(path)
        if name not in disabled:
            pm.load_module(path, name=name, version=__version__, source="builtin")
    if load_entry_points:
        allow = os.environ.get("PERSONAE_PLUGINS")
        allowed = {n.strip() for n in allow.split(",") if n.strip()} if allow else None
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in disabled or (allowed is not None and ep.name not in allowed):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise StartupError(f"cannot be imported: {exc}", plugin=ep.name) from exc
            version = ep.dist.version if ep.dist else "?"
            pm.add(plugin, name=ep.name, version=version, source="entry point")
    for path in settings.plugins:
        name = _short_name(path)
        if name not in disabled:
            pm.load_module(path, name=name, version="", source="config")
    pm.check()
    return pm


class PluginManager:
    """personae's wrapper around :class:`pluggy.PluginManager` that awaits hook
    results, contains plugin failures and names the plugin in every error."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("personae")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.trace = _tracing()
        """Log every hook call (``PERSONAE_TRACE_HOOKS``, read when the manager is made)."""

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def load_module(self, path: str, *, name: str, version: str, source: str) -> None:
        try:
            module = importlib.import_module(path)
        except Exception as exc:
            raise StartupError(f"cannot import {path}: {exc}", plugin=name) from exc
        self.add(module, name=name, version=version, source=source)

    def add(self, plugin: object, *, name: str, version: str = "", source: str = "") -> None:
        """Register a plugin object (module, class instance) under ``name``."""
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise StartupError(str(exc), plugin=name) from exc
        except ValueError as exc:
            raise StartupError(f"cannot be registered: {exc}", plugin=name) from exc
        hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or ()))
        self.infos[name] = PluginInfo(name, version, source, hooks)

    def remove(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.infos.pop(name, None)

    def check(self) -> None:
        """Fail on hook implementations that match no hook specification."""
        for name, impls in self._unknown_hooks().items():
            raise StartupError(
                f"implements unknown hook(s) {', '.join(sorted(impls))}; "
                "see docs/plugins.md for the hooks personae calls",
                plugin=name,
            )

    def _unknown_hooks(self) -> dict[str, set[str]]:
        unknown: dict[str, set[str]] = {}
        for hook_name in dir(self.pm.hook):
            caller = getattr(self.pm.hook, hook_name)
            if not isinstance(caller, pluggy.HookCaller) or caller.spec is not None:
                continue
            for impl in caller.get_hookimpls():
                unknown.setdefault(impl.plugin_name, set()).add(hook_name)
        return unknown

    def plugins(self) -> list[PluginInfo]:
        return [self.infos[n] for n in sorted(self.infos)]

    def _impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        caller: pluggy.HookCaller = getattr(self.pm.hook, hook_name)
        # pluggy calls implementations last-registered-first, tryfirst before trylast.
        return [i for i in reversed(caller.get_hookimpls()) if not (i.hookwrapper or i.wrapper)]

    async def _call_one(self, hook_name: str, impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        args = {name: kwargs[name] for name in impl.argnames}
        started = time.perf_counter() if self.trace else 0.0
        try:
            return await await_me_maybe(impl.function(**args))
        finally:
            if self.trace:
                log.info(
                    "hook %s plugin=%s %.2f ms",
                    hook_name,
                    impl.plugin_name,
                    (time.perf_counter() - started) * 1000,
                )

    async def call(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation in pluggy's order, awaiting each result.
        A plugin that raises is logged with its name and skipped. Returns
        ``(plugin name, result)`` for each non-None result."""
        results: list[tuple[str, Any]] = []
        for impl in self._impls(hook_name):
            try:
                value = await self._call_one(hook_name, impl, kwargs)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("plugin %r failed in hook %s", impl.plugin_name, hook_name)
                continue
            if value is not None:
                results.append((impl.plugin_name, value))
        return results

    async def call_strict(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Like :meth:`call`, but every implementation runs and failures are raised
        together afterwards as one :class:`PersonaeError` naming the plugins."""
        results: list[tuple[str, Any]] = []
        failed: list[str] = []
        for impl in self._impls(hook_name):
            try:
                value = await self._call_one(hook_name, impl, kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("plugin %r failed in hook %s", impl.plugin_name, hook_name)
                failed.append(f"{impl.plugin_name} ({exc})")
                continue
            if value is not None:
                results.append((impl.plugin_name, value))
        if failed:
            raise PersonaeError(f"{hook_name} failed in plugin(s): {', '.join(failed)}")
        return results

    async def call_startup(self, hook_name: str, **kwargs: Any) -> None:
        """Call a startup-time hook; the first failure raises StartupError naming the plugin."""
        for impl in self._impls(hook_name):
            try:
                await self._call_one(hook_name, impl, kwargs)
            except StartupError:
                raise
            except Exception as exc:
                raise StartupError(
                    f"failed in {hook_name}: {exc}", plugin=impl.plugin_name
                ) from exc

    async def collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a ``register_*`` hook, giving each plugin a ``register`` callback.
        Returns ``(plugin name, registered object)`` in call order; a plugin that
        raises stops the start with a StartupError naming it."""
        collected: list[tuple[str, Any]] = []
        for impl in self._impls(hook_name):
            registered: list[Any] = []
            try:
                await self._call_one(hook_name, impl, {**kwargs, "register": registered.append})
            except Exception as exc:
                raise StartupError(
                    f"failed in {hook_name}: {exc}", plugin=impl.plugin_name
                ) from exc
            collected.extend((impl.plugin_name, obj) for obj in registered)
        return collected


S = TypeVar("S")


class PerRuntime(Generic[S]):
    """A plugin's state for each runtime, made by ``make(runtime)`` on first use
    and forgotten with the runtime (or at :meth:`drop`, on shutdown)."""

    def __init__(self, make: Callable[[Runtime], S]) -> None:
        self._make = make
        self._values: weakref.WeakKeyDictionary[Runtime, S] = weakref.WeakKeyDictionary()

    def get(self, runtime: Runtime) -> S:
        value = self._values.get(runtime)
        if value is None:
            value = self._values[runtime] = self._make(runtime)
        return value

    def drop(self, runtime: Runtime) -> S | None:
        return self._values.pop(runtime, None)
