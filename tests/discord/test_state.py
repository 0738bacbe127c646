"""The adapter's own state: active personas per channel, rules per server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from personae.adapters.discord.state import DiscordState


async def test_a_channels_persona_survives_a_restart(tmp_path: Path) -> None:
    await DiscordState(tmp_path).set_active_persona(1, 10, "pip")
    assert await DiscordState(tmp_path).active_persona(1, 10) == "pip"
    assert await DiscordState(tmp_path).active_persona(1, 11) is None
    assert await DiscordState(tmp_path).active_persona(None, 10) is None


async def test_each_server_has_its_own_file_and_rules(tmp_path: Path) -> None:
    state = DiscordState(tmp_path)
    await state.set_allowed_personas(1, ["sage"])
    await state.set_allowed_commands(2, ["help"])
    names = sorted(p.name for p in await asyncio.to_thread(lambda: list(tmp_path.iterdir())))
    assert names == ["guild-1.json", "guild-2.json"]
    one, two = await state.rules(1), await state.rules(2)
    assert one.allows_persona("sage") and not one.allows_persona("pip")
    assert one.allows_command("export")
    assert two.allows_persona("pip") and not two.allows_command("export")
    await state.set_allowed_personas(1, None)
    assert (await state.rules(1)).allows_persona("pip")


async def test_a_change_by_another_process_is_seen(tmp_path: Path) -> None:
    reader = DiscordState(tmp_path)
    assert await reader.active_persona(1, 10) is None
    await DiscordState(tmp_path).set_active_persona(1, 10, "scav")
    assert await reader.active_persona(1, 10) == "scav"


async def test_an_unreadable_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "guild-1.json").write_text("{not json")
    assert await DiscordState(tmp_path).active_persona(1, 10) is None
