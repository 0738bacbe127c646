"""Slash commands: plugin commands, /persona, /server, /link — end to end through
INTERACTION_CREATE and the interaction callback/follow-up REST calls."""

from __future__ import annotations

import json
from typing import Any

from personae.core.proactive import ProactiveMessage
from personae.core.types import Scope
from personae.testing.fake_discord import MANAGE_GUILD, MODERATOR, FakeDiscord
from tests.discord.conftest import Harness, StartBot, World, chat_reply, eventually, final_contents

CALLBACK = r"/interactions/\d+/\w+/callback"


def followups(fake: FakeDiscord) -> str:
    return rf"/webhooks/{fake.application_id}/\w+"


async def answer(fake: FakeDiscord, interaction: dict[str, Any]) -> str:
    """The text the user sees for an interaction: the callback's message, or the
    follow-up after a "thinking..." callback."""
    token = interaction["token"]
    callback = await fake.wait_for_request(
        "POST", rf"/interactions/{interaction['id']}/{token}/callback"
    )
    if callback.json["type"] == 4:
        return str(callback.json["data"]["content"])
    followup = await fake.wait_for_request("POST", rf"/webhooks/{fake.application_id}/{token}")
    return str(followup.json["content"])


async def test_plugin_commands_are_registered_as_slash_commands(bot: Harness) -> None:
    await eventually(lambda: "global" in bot.fake.commands)
    names = {c["name"] for c in bot.fake.commands["global"]}
    assert {"profile", "forget", "export", "help", "persona", "link", "server"} <= names
    forget = next(c for c in bot.fake.commands["global"] if c["name"] == "forget")
    assert forget["options"][0]["choices"] == [
        {"name": "this", "value": "this"},
        {"name": "all", "value": "all"},
    ]


async def test_profile_shows_what_this_persona_remembers(bot: Harness, world: World) -> None:
    user_id = await bot.runtime.users.resolve("discord", world.alice["id"])
    await bot.runtime.memory.add(Scope("sage", user_id), "Alice keeps bees")
    interaction = await bot.fake.run_command(world.channel, world.alice, "profile")
    text = await answer(bot.fake, interaction)
    assert "Alice keeps bees" in text


async def test_forget_asks_to_confirm_and_the_button_forgets(
    world: World, start_bot: StartBot, db_url: str
) -> None:
    harness = await start_bot(db_url)
    fake = harness.fake
    await fake.send_message(world.channel, world.alice, "remember me", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 1)
    user_id = await harness.runtime.users.resolve("discord", world.alice["id"])
    scope, key = Scope("sage", user_id), f"discord:{world.channel['id']}"
    assert await harness.runtime.history.recent(scope, key, 10)

    interaction = await fake.run_command(world.channel, world.alice, "forget")
    question = await fake.wait_for_request("POST", rf"/webhooks/{fake.application_id}/\w+")
    assert "Confirm" in question.json["content"]
    assert question.json["flags"] & 64  # only the user sees it
    assert await harness.runtime.history.recent(scope, key, 10)  # nothing deleted yet

    message = next(
        m
        for m in fake.messages.values()
        if m.get("interaction_token") == interaction["token"] and m["components"]
    )
    click = await fake.click(world.channel, world.alice, message, "Confirm")
    edit = await fake.wait_for_request(
        "PATCH", rf"/webhooks/{fake.application_id}/{click['token']}/messages/@original"
    )
    assert edit.json["content"].startswith("Forgotten")
    assert edit.json["components"] == []
    assert fake.messages[int(message["id"])]["content"].startswith("Forgotten")
    assert await harness.runtime.history.recent(scope, key, 10) == []


async def test_cancel_keeps_everything(bot: Harness, world: World) -> None:
    await bot.fake.send_message(world.channel, world.alice, "remember me", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    interaction = await bot.fake.run_command(world.channel, world.alice, "forget")
    await bot.fake.wait_for_request("POST", followups(bot.fake))
    message = next(
        m
        for m in bot.fake.messages.values()
        if m.get("interaction_token") == interaction["token"] and m["components"]
    )
    await bot.fake.click(world.channel, world.alice, message, "Cancel")
    update = await bot.fake.wait_for_request("POST", CALLBACK, count=2)
    assert update.json["data"]["content"] == "Cancelled."
    user_id = await bot.runtime.users.resolve("discord", world.alice["id"])
    assert await bot.runtime.history.recent(
        Scope("sage", user_id), f"discord:{world.channel['id']}", 10
    )


async def test_export_arrives_as_a_file_in_a_direct_message(bot: Harness, world: World) -> None:
    await bot.fake.send_message(world.channel, world.alice, "hello", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    interaction = await bot.fake.run_command(world.channel, world.alice, "export")
    assert "direct message" in await answer(bot.fake, interaction)
    dm = bot.fake.dm_channel(world.alice)
    sent = await bot.fake.wait_for_request("POST", rf"/channels/{dm['id']}/messages")
    data = json.loads(sent.files["personae-export.json"])
    assert data["format"] == "personae.export/1"
    assert "hello" in json.dumps(data)


async def test_persona_use_switches_who_answers_in_the_channel(bot: Harness, world: World) -> None:
    interaction = await bot.fake.run_command(
        world.channel, world.alice, "persona", {"persona": "pip"}, sub="use", permissions=MODERATOR
    )
    assert "now answers" in await answer(bot.fake, interaction)
    bot.ollama.reply_with(chat_reply("Pip here!"))
    await bot.fake.send_message(world.channel, world.bob, "hello", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    executed = bot.fake.find("POST", r"/webhooks/\d+/\w+")
    assert executed[-1].json["username"] == "Pip"
    assert final_contents(bot.fake, world.channel)[-1] == "Pip here!"


async def test_persona_list_and_info(bot: Harness, world: World) -> None:
    listing = await answer(
        bot.fake, await bot.fake.run_command(world.channel, world.alice, "persona", sub="list")
    )
    assert "`sage`" in listing and "`pip`" in listing
    info = await answer(
        bot.fake,
        await bot.fake.run_command(
            world.channel, world.alice, "persona", {"persona": "sage"}, sub="info"
        ),
    )
    assert info.startswith("**Sage** (`sage`) — active here")


async def test_persona_autocomplete_offers_matching_personas(bot: Harness, world: World) -> None:
    data = {
        "name": "persona",
        "type": 1,
        "options": [
            {
                "name": "use",
                "type": 1,
                "options": [{"name": "persona", "type": 3, "value": "pi", "focused": True}],
            }
        ],
    }
    interaction = await bot.fake.send_interaction(world.channel, world.alice, data, kind=4)
    callback = await bot.fake.wait_for_request(
        "POST", rf"/interactions/{interaction['id']}/\w+/callback"
    )
    assert callback.json["type"] == 8
    assert [c["value"] for c in callback.json["data"]["choices"]] == ["pip"]


async def test_server_admins_restrict_personas_and_commands(bot: Harness, world: World) -> None:
    fake = bot.fake
    denied = await answer(
        fake,
        await fake.run_command(
            world.channel, world.bob, "server", {"allow": "sage"}, sub="personas"
        ),
    )
    assert "manage this server" in denied

    allowed = await answer(
        fake,
        await fake.run_command(
            world.channel,
            world.alice,
            "server",
            {"allow": "sage"},
            sub="personas",
            permissions=MANAGE_GUILD,
        ),
    )
    assert "Personas allowed: sage" in allowed
    await answer(
        fake,
        await fake.run_command(
            world.channel,
            world.alice,
            "server",
            {"allow": "help"},
            sub="commands",
            permissions=MANAGE_GUILD,
        ),
    )

    refused = await answer(
        fake,
        await fake.run_command(
            world.channel,
            world.bob,
            "persona",
            {"persona": "pip"},
            sub="use",
            permissions=MODERATOR,
        ),
    )
    assert "No persona `pip`" in refused
    off = await answer(fake, await fake.run_command(world.channel, world.bob, "export"))
    assert "turned off" in off
    listing = await answer(
        fake, await fake.run_command(world.channel, world.bob, "persona", sub="list")
    )
    assert "`pip`" not in listing


async def test_link_gives_a_code_that_joins_the_web_account(bot: Harness, world: World) -> None:
    from personae.adapters.discord.linking import LinkCodes

    await bot.fake.send_message(world.channel, world.alice, "I like tea", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    text = await answer(bot.fake, await bot.fake.run_command(world.channel, world.alice, "link"))
    code = text.split("**")[1]
    web_user = await bot.runtime.users.create("alice-web")

    await LinkCodes().redeem(code, web_user.id)

    assert await bot.runtime.users.resolve("discord", world.alice["id"]) == web_user.id
    history = await bot.runtime.history.recent(
        Scope("sage", web_user.id), f"discord:{world.channel['id']}", 10
    )
    assert [m.content for m in history] == ["I like tea", "You said: I like tea"]


async def test_a_follow_up_question_is_delivered_in_the_channel(bot: Harness, world: World) -> None:
    user_id = await bot.runtime.users.resolve("discord", world.alice["id"], "alice")
    message = ProactiveMessage(
        id=1,
        scope=Scope("sage", user_id),
        conversation=f"discord:{world.channel['id']}",
        platform="discord",
        text="How did the bees do this spring?",
    )
    assert await bot.runtime.proactive.deliver(message)
    sent = await bot.fake.wait_for_request("POST", r"/webhooks/\d+/\w+")
    assert sent.json["content"] == f"<@{world.alice['id']}> How did the bees do this spring?"
    assert sent.json["username"] == "Sage"
    assert sent.json["allowed_mentions"]["users"] == [int(world.alice["id"])]


async def test_a_follow_up_for_another_platform_is_not_taken(bot: Harness) -> None:
    message = ProactiveMessage(1, Scope("sage", 1), "web:abc", "discord", "Hello?")
    assert not await bot.runtime.proactive.deliver(message)
