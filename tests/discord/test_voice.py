"""Personas speaking on Discord: /voice join and /voice leave through the fake
Discord's interactions, the replies' speech handed to the voice client's
``play`` (real espeak-ng and ffmpeg behind the audio sources), and /voice say's
audio attachment. The voice gateway itself is out of scope: the adapter's
connector returns a recording client instead."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import discord
import pytest

from personae.testing.fake_discord import BASIC_PERMISSIONS, MANAGE_WEBHOOKS, MODERATOR, FakeDiscord
from tests.discord.conftest import Harness, StartBot, World, chat_reply, eventually

CONNECT_AND_SPEAK = int(discord.Permissions(connect=True, speak=True).value)
FRAME = 3840  # 20 ms of 48 kHz stereo 16-bit PCM


class RecordingVoiceClient:
    """Stands in for discord.VoiceClient after the voice handshake: ``play``
    reads the source to the end on a thread (as discord.py's player does),
    keeps the PCM it produced, then calls ``after``."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.connected = True
        self.sources: list[discord.AudioSource] = []
        self.pcm: list[bytes] = []
        self.disconnects = 0

    def is_connected(self) -> bool:
        return self.connected

    def play(self, source: discord.AudioSource, *, after: Any = None) -> None:
        self.sources.append(source)

        def run() -> None:
            frames = []
            try:
                while frame := source.read():
                    frames.append(frame)
            finally:
                source.cleanup()
            self.pcm.append(b"".join(frames))
            if after is not None:
                after(None)

        threading.Thread(target=run, daemon=True).start()

    async def disconnect(self, *, force: bool = False) -> None:
        self.connected = False
        self.disconnects += 1


@pytest.fixture
def lounge(fake_discord: FakeDiscord, world: World) -> dict[str, Any]:
    """A voice channel alice is in (bob is in none); the bot may connect and speak."""
    channel = fake_discord.add_channel(world.guild, "Lounge")
    channel.update(type=2, bitrate=64000, user_limit=0)
    world.guild["voice_states"] = [
        {
            "guild_id": world.guild["id"],
            "channel_id": channel["id"],
            "user_id": world.alice["id"],
            "session_id": "alice-voice",
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": False,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }
    ]
    permissions = BASIC_PERMISSIONS | MANAGE_WEBHOOKS | CONNECT_AND_SPEAK
    fake_discord.set_bot_permissions(world.guild, permissions)
    return channel


@pytest.fixture
async def voiced(lounge: dict[str, Any], start_bot: StartBot) -> tuple[Harness, list[Any]]:
    """The bot, connected, with a connector that records the clients it makes."""
    harness = await start_bot()
    clients: list[RecordingVoiceClient] = []

    async def connect(channel: Any) -> RecordingVoiceClient:
        client = RecordingVoiceClient(channel)
        clients.append(client)
        return client

    harness.bot.voice.connect = connect
    return harness, clients


async def answer(fake: FakeDiscord, interaction: dict[str, Any]) -> dict[str, Any]:
    """What the user sees for an interaction: the callback's message, or the
    follow-up after a "thinking..." callback (with its files)."""
    token = interaction["token"]
    callback = await fake.wait_for_request(
        "POST", rf"/interactions/{interaction['id']}/{token}/callback"
    )
    if callback.json["type"] == 4:
        return {**callback.json["data"], "files": {}}
    followup = await fake.wait_for_request("POST", rf"/webhooks/{fake.application_id}/{token}")
    return {**followup.json, "files": followup.files}


async def test_voice_is_a_slash_command_with_join_leave_and_say(bot: Harness) -> None:
    await eventually(lambda: "global" in bot.fake.commands)
    [voice] = [c for c in bot.fake.commands["global"] if c["name"] == "voice"]
    assert [o["name"] for o in voice["options"]] == ["join", "leave", "say"]
    [channel] = voice["options"][0]["options"]
    assert channel["type"] == 7 and channel["channel_types"] == [2, 13]


async def test_after_join_replies_are_spoken_in_the_voice_channel_until_leave(
    voiced: tuple[Harness, list[RecordingVoiceClient]], world: World, lounge: dict[str, Any]
) -> None:
    harness, clients = voiced
    fake = harness.fake
    harness.ollama.reply_with(chat_reply(["Ash and embers. ", "The mountain ", "sleeps."]))

    joined = await answer(
        fake,
        await fake.run_command(
            world.channel, world.alice, "voice", sub="join", permissions=MODERATOR
        ),
    )
    await fake.send_message(world.channel, world.alice, "Tell me a story", mention_bot=True)
    await eventually(lambda: len(clients) == 1 and len(clients[0].pcm) == 2)
    left = await answer(
        fake,
        await fake.run_command(
            world.channel, world.alice, "voice", sub="leave", permissions=MODERATOR
        ),
    )
    await fake.send_message(world.channel, world.alice, "And another", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 2)
    await asyncio.sleep(0.2)  # had it been spoken, playback would have started by now

    [client] = clients
    assert f"<#{lounge['id']}>" in joined["content"] and "Sage" in joined["content"]
    assert int(client.channel.id) == int(lounge["id"])
    assert isinstance(client.channel, discord.VoiceChannel)
    assert all(isinstance(s, discord.FFmpegPCMAudio) for s in client.sources)
    # Two sentences, each real PCM of Discord's frame size, a fraction of a second or more.
    assert all(len(pcm) % FRAME == 0 and len(pcm) > 10 * FRAME for pcm in client.pcm)
    assert "Left" in left["content"]
    assert client.disconnects == 1 and len(client.sources) == 2


async def test_join_takes_a_named_channel_or_asks_for_one(
    voiced: tuple[Harness, list[RecordingVoiceClient]], world: World, lounge: dict[str, Any]
) -> None:
    harness, clients = voiced
    fake = harness.fake

    nowhere = await answer(
        fake,
        await fake.run_command(
            world.channel, world.bob, "voice", sub="join", permissions=MODERATOR
        ),
    )
    named = await answer(
        fake,
        await fake.run_command(
            world.channel,
            world.bob,
            "voice",
            {"channel": lounge["id"]},
            sub="join",
            permissions=MODERATOR,
        ),
    )
    text_channel = await answer(
        fake,
        await fake.run_command(
            world.channel,
            world.bob,
            "voice",
            {"channel": world.channel["id"]},
            sub="join",
            permissions=MODERATOR,
        ),
    )

    assert "Join a voice channel first" in nowhere["content"]
    assert "Joined" in named["content"]
    assert "Join a voice channel first" in text_channel["content"]
    assert [int(c.channel.id) for c in clients] == [int(lounge["id"])]


async def test_without_connect_permission_the_bot_says_so(
    voiced: tuple[Harness, list[RecordingVoiceClient]], world: World
) -> None:
    harness, clients = voiced
    guild = harness.bot.get_guild(int(world.guild["id"]))
    assert guild is not None and guild.me.guild_permissions.connect
    harness.fake.set_bot_permissions(world.guild, BASIC_PERMISSIONS)
    role = {"guild_id": world.guild["id"], "role": world.guild["roles"][1]}
    await harness.fake.dispatch("GUILD_ROLE_UPDATE", role, guild_id=world.guild["id"])
    await eventually(lambda: not guild.me.guild_permissions.connect)

    said = await answer(
        harness.fake,
        await harness.fake.run_command(
            world.channel, world.alice, "voice", sub="join", permissions=MODERATOR
        ),
    )

    assert "may not connect" in said["content"] and clients == []


async def test_voice_say_sends_the_last_reply_as_an_ogg_file(
    voiced: tuple[Harness, list[RecordingVoiceClient]], world: World
) -> None:
    harness, _ = voiced
    fake = harness.fake
    harness.ollama.reply_with(chat_reply("Welcome back, wanderer."))

    before = await answer(
        fake, await fake.run_command(world.channel, world.alice, "voice", sub="say")
    )
    await fake.send_message(world.channel, world.alice, "Hello", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 1)
    said = await answer(
        fake, await fake.run_command(world.channel, world.alice, "voice", sub="say")
    )
    bobs = await answer(fake, await fake.run_command(world.channel, world.bob, "voice", sub="say"))

    assert "has not answered you" in before["content"]
    [(name, audio)] = said["files"].items()
    assert name.endswith(".ogg") and audio[:4] == b"OggS"
    assert said["flags"] & 64  # only alice sees it
    assert "has not answered you" in bobs["content"] and bobs["files"] == {}


async def test_a_server_can_turn_voice_off(
    voiced: tuple[Harness, list[RecordingVoiceClient]], world: World
) -> None:
    harness, clients = voiced
    await harness.bot.state.set_allowed_commands(int(world.guild["id"]), ["profile"])

    said = await answer(
        harness.fake,
        await harness.fake.run_command(
            world.channel, world.alice, "voice", sub="join", permissions=MODERATOR
        ),
    )

    assert "turned off" in said["content"] and clients == []
