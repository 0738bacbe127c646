"""The Discord adapter's own small state: each channel's active persona and each
server's restrictions.

It lives in JSON files, one per server (``guild-<id>.json``) plus one for direct
messages (``direct.json``), under ``DiscordSettings.state_dir``. A server's events and
interactions arrive on exactly one shard, and a shard runs in exactly one process,
so each file has a single writer even when several processes split the shards;
point them at the same folder and a re-shard keeps every server's state. Writes
replace the file atomically (write a temporary file, then rename) under an
:class:`asyncio.Lock`; reads notice a file changed by another process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personae.core.locks import KeyedLocks

log = logging.getLogger("personae.discord.state")


@dataclass(frozen=True, slots=True)
class GuildRules:
    """What a server allows. None means everything."""

    personas: frozenset[str] | None = None
    commands: frozenset[str] | None = None

    def allows_persona(self, persona_id: str) -> bool:
        return self.personas is None or persona_id in self.personas

    def allows_command(self, name: str) -> bool:
        return self.commands is None or name in self.commands


def _optional_set(value: Any) -> frozenset[str] | None:
    return None if value is None else frozenset(str(v) for v in value)


class DiscordState:
    """Per-channel active personas and per-server rules, kept in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, tuple[int, dict[str, Any]]] = {}
        self._locks: KeyedLocks[str] = KeyedLocks()

    @staticmethod
    def _key(guild_id: int | None) -> str:
        return "direct" if guild_id is None else f"guild-{int(guild_id)}"

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def _load(self, key: str) -> dict[str, Any]:
        path = self._path(key)
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        cached = self._cache.get(key)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable Discord state file %s: %s", path, exc)
            data = {}
        if not isinstance(data, dict):
            data = {}
        self._cache[key] = (mtime, data)
        return data

    def _store(self, key: str, data: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        fd, temporary = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._cache[key] = (path.stat().st_mtime_ns, data)

    async def _read(self, guild_id: int | None) -> dict[str, Any]:
        return await asyncio.to_thread(self._load, self._key(guild_id))

    async def _update(self, guild_id: int | None, change: Callable[[dict[str, Any]], None]) -> None:
        key = self._key(guild_id)
        async with self._locks.hold(key):
            data = json.loads(json.dumps(await asyncio.to_thread(self._load, key)))  # a copy
            change(data)
            await asyncio.to_thread(self._store, key, data)

    # -- channels ----------------------------------------------------------------

    async def active_persona(self, guild_id: int | None, channel_id: int) -> str | None:
        """The persona chosen for a channel with ``/persona use``, if any."""
        channels = (await self._read(guild_id)).get("channels", {})
        value = channels.get(str(channel_id), {}).get("persona")
        return str(value) if value else None

    async def set_active_persona(
        self, guild_id: int | None, channel_id: int, persona_id: str | None
    ) -> None:
        def change(data: dict[str, Any]) -> None:
            channels = data.setdefault("channels", {})
            if persona_id is None:
                channels.pop(str(channel_id), None)
            else:
                channels.setdefault(str(channel_id), {})["persona"] = persona_id

        await self._update(guild_id, change)

    # -- server rules ------------------------------------------------------------

    async def rules(self, guild_id: int | None) -> GuildRules:
        """The server's restrictions (direct messages have none)."""
        if guild_id is None:
            return GuildRules()
        data = await self._read(guild_id)
        return GuildRules(
            _optional_set(data.get("allowed_personas")), _optional_set(data.get("allowed_commands"))
        )

    async def set_allowed_personas(self, guild_id: int, ids: Iterable[str] | None) -> None:
        allowed = None if ids is None else sorted(set(ids))
        await self._update(guild_id, lambda data: data.__setitem__("allowed_personas", allowed))

    async def set_allowed_commands(self, guild_id: int, names: Iterable[str] | None) -> None:
        allowed = None if names is None else sorted(set(names))
        await self._update(guild_id, lambda data: data.__setitem__("allowed_commands", allowed))
