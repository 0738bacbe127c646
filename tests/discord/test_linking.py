"""Link codes join a Discord identity to a web account, memory included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from personae.adapters.discord.linking import LinkCodeError, LinkCodes, hash_code
from personae.core.clock import ManualClock
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.core.types import Scope
from personae.storage.models import LinkCode, PluginState


@pytest.fixture
async def rt(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings, load_entry_points=False)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def test_redeeming_moves_the_discord_users_memory_to_the_web_user(rt: Runtime) -> None:
    discord_user = await rt.users.resolve("discord", "111", "alice")
    sage = Scope("sage", discord_user)
    await rt.memory.add(sage, "Alice keeps bees")
    await rt.history.append_exchange(sage, "discord:9", "hi", "hello Alice")
    await rt.plugin_state.set(sage, "curiosity", "asked", ["bees"])
    web = await rt.users.create("alice-web")

    code = await LinkCodes().create("discord", "111")
    result = await LinkCodes().redeem(code, web.id)

    assert result.merged_user_id == discord_user
    assert await rt.users.resolve("discord", "111") == web.id
    moved = Scope("sage", web.id)
    assert [m.text for m in await rt.memory.list(moved)] == ["Alice keeps bees"]
    assert [m.content for m in await rt.history.recent(moved, "discord:9", 10)] == [
        "hi",
        "hello Alice",
    ]
    assert await rt.plugin_state.get(moved, "curiosity", "asked") == ["bees"]
    assert await rt.users.get(discord_user) is None


async def test_conversations_both_users_had_are_joined(rt: Runtime) -> None:
    discord_user = await rt.users.resolve("discord", "111", "alice")
    web = await rt.users.create("alice-web")
    await rt.history.append_exchange(Scope("sage", web.id), "discord:9", "first", "one")
    await rt.history.append_exchange(Scope("sage", discord_user), "discord:9", "second", "two")
    await rt.plugin_state.set(Scope("sage", web.id), "p", "k", {"v": "old"})
    await PluginState.filter(user_id=web.id).update(updated_at=rt.clock.now() - timedelta(days=1))
    await rt.plugin_state.set(Scope("sage", discord_user), "p", "k", {"v": "new"})

    await LinkCodes().redeem(await LinkCodes().create("discord", "111"), web.id)

    history = await rt.history.recent(Scope("sage", web.id), "discord:9", 10)
    assert [m.content for m in history] == ["first", "one", "second", "two"]
    assert await rt.plugin_state.get(Scope("sage", web.id), "p", "k") == {"v": "new"}


async def test_a_code_works_once(rt: Runtime) -> None:
    web = await rt.users.create("alice-web")
    code = await LinkCodes().create("discord", "111")
    await LinkCodes().redeem(code, web.id)
    with pytest.raises(LinkCodeError):
        await LinkCodes().redeem(code, web.id)


async def test_a_code_expires_after_ten_minutes(rt: Runtime) -> None:
    clock = ManualClock()
    web = await rt.users.create("alice-web")
    code = await LinkCodes(clock).create("discord", "111")
    clock.advance(minutes=10, seconds=1)
    with pytest.raises(LinkCodeError, match="expired"):
        await LinkCodes(clock).redeem(code, web.id)


async def test_codes_are_stored_only_as_hashes_and_a_new_one_replaces_the_old(
    rt: Runtime,
) -> None:
    first = await LinkCodes().create("discord", "111")
    second = await LinkCodes().create("discord", "111")
    rows = await LinkCode.all()
    assert [row.code_hash for row in rows] == [hash_code(second)]
    assert second.replace("-", "") not in str([row.code_hash for row in rows])
    web = await rt.users.create("alice-web")
    with pytest.raises(LinkCodeError):
        await LinkCodes().redeem(first, web.id)
    await LinkCodes().redeem(second.lower().replace("-", " "), web.id)  # forgiving input


async def test_an_identity_linked_to_another_web_account_is_refused(rt: Runtime) -> None:
    owner = await rt.users.create("bob")
    from personae.storage.models import User

    await User.filter(id=owner.id).update(username="bob")
    await rt.users.link(owner.id, "discord", "111")
    other = await rt.users.create("mallory")
    with pytest.raises(LinkCodeError, match="already linked"):
        await LinkCodes().redeem(await LinkCodes().create("discord", "111"), other.id)
    assert await rt.users.resolve("discord", "111") == owner.id
