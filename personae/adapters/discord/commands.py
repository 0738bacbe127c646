"""Slash commands: the commands plugins register (``/profile``, ``/forget``,
``/export``, ...) plus the adapter's own ``/persona``, ``/link`` and ``/server``.

Plugin commands run through the core :class:`~personae.core.commands.CommandRegistry`
with the scope (the channel's active persona, the invoking user). A result that
needs confirmation gets Confirm/Cancel buttons; a file goes to the user's DMs.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from personae.adapters.discord.delivery import DELIVERY_ERRORS
from personae.adapters.discord.events import PLATFORM, conversation_key
from personae.adapters.discord.splitting import split_message
from personae.adapters.discord.voice import command_payload as voice_payload
from personae.core.commands import Command, CommandContext, CommandResult
from personae.core.errors import PersonaeError

if TYPE_CHECKING:
    from personae.adapters.discord.bot import PersonaeBot

log = logging.getLogger("personae.discord.commands")

STRING, SUB_COMMAND = 3, 1
MANAGE_GUILD = str(discord.Permissions(manage_guild=True).value)
ADAPTER_COMMANDS = ("persona", "link", "server", "voice")
GUILD_ONLY = [0]  # interaction context: guild
CONFIRM_TIMEOUT_SECONDS = 300.0


def _option(name: str, description: str, *, required: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "type": STRING,
        "name": name,
        "description": (description or name)[:100],
        "required": required,
        **extra,
    }


def _sub(name: str, description: str, *options: dict[str, Any]) -> dict[str, Any]:
    return {"type": SUB_COMMAND, "name": name, "description": description, "options": list(options)}


def adapter_payloads() -> list[dict[str, Any]]:
    persona = _option("persona", "The persona's id", required=True, autocomplete=True)
    return [
        {
            "name": "persona",
            "description": "Choose, list and describe the personas of this channel",
            "options": [
                _sub("use", "Make a persona the one that answers in this channel", persona),
                _sub("list", "The personas you can use here"),
                _sub("info", "About a persona", {**persona, "required": False}),
            ],
        },
        {
            "name": "link",
            "description": "Get a one-time code that links this Discord account to the web UI",
        },
        {
            "name": "server",
            "description": "Choose which personas and commands this server allows",
            "default_member_permissions": MANAGE_GUILD,
            "contexts": GUILD_ONLY,
            "options": [
                _sub("personas", "Allowed personas",
                     _option("allow", "ids, comma-separated, or all", required=True)),
                _sub("commands", "Allowed commands",
                     _option("allow", "names, comma-separated, or all", required=True)),
                _sub("show", "What this server allows"),
            ],
        },
        voice_payload(),
    ]  # fmt: skip


def plugin_payload(command: Command) -> dict[str, Any]:
    """The application-command JSON for a plugin's command."""
    options = [
        _option(
            option.name,
            option.description,
            required=option.required,
            **({"choices": [{"name": c, "value": c} for c in option.choices[:25]]}
               if option.choices else {}),
        )
        for option in command.options
    ]  # fmt: skip
    options.sort(key=lambda o: not o["required"])  # Discord wants required ones first
    return {"name": command.name, "description": command.description[:100], "options": options}


def command_payloads(commands: list[Command]) -> list[dict[str, Any]]:
    """Every slash command the bot registers; the adapter's own names win."""
    payloads = adapter_payloads()
    for command in commands:
        if command.name in ADAPTER_COMMANDS:
            log.warning("plugin command /%s is hidden by the Discord adapter's own", command.name)
            continue
        payloads.append(plugin_payload(command))
    return payloads


def _options(data: Any) -> tuple[str | None, dict[str, str]]:
    """(sub-command name, {option: value}) of an interaction's data."""
    options = list((data or {}).get("options") or [])
    sub: str | None = None
    if options and options[0].get("type") == SUB_COMMAND:
        sub = options[0]["name"]
        options = list(options[0].get("options") or [])
    return sub, {o["name"]: str(o.get("value", "")) for o in options}


def _focused(data: Any) -> str:
    options = list((data or {}).get("options") or [])
    if options and options[0].get("type") == SUB_COMMAND:
        options = list(options[0].get("options") or [])
    return next((str(o.get("value", "")) for o in options if o.get("focused")), "")


CONFIRM, CANCEL = "personae:confirm:", "personae:cancel:"


def confirm_buttons(nonce: str) -> discord.ui.View:
    """Confirm / Cancel buttons. The view is stopped before it is sent, so
    discord.py does not route the clicks: :meth:`SlashCommands.handle` does, from
    the pending question registered before the buttons were shown (no race)."""
    view = discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(
            label="Confirm", style=discord.ButtonStyle.danger, custom_id=CONFIRM + nonce
        )
    )
    view.add_item(
        discord.ui.Button(
            label="Cancel", style=discord.ButtonStyle.secondary, custom_id=CANCEL + nonce
        )
    )
    view.stop()
    return view


@dataclass(slots=True)
class _Pending:
    command: Command
    ctx: CommandContext
    owner: int
    expires: float


class SlashCommands:
    """Registers the slash commands and answers their interactions."""

    def __init__(self, bot: PersonaeBot) -> None:
        self.bot = bot
        self.runtime = bot.runtime
        self._pending: dict[str, _Pending] = {}

    def payloads(self) -> list[dict[str, Any]]:
        return command_payloads(self.runtime.commands.all())

    async def sync(self) -> None:
        """Register the commands with Discord (globally, or in the configured guilds)."""
        app_id = self.bot.application_id
        if app_id is None:
            log.warning("cannot register slash commands: the application id is unknown")
            return
        payloads = self.payloads()
        guilds = self.bot.discord_settings.command_guild_ids
        if guilds:
            for guild_id in guilds:
                await self.bot.http.bulk_upsert_guild_commands(app_id, guild_id, payloads)
        else:
            await self.bot.http.bulk_upsert_global_commands(app_id, payloads)
        log.info("registered %d slash commands", len(payloads))

    # -- dispatch ------------------------------------------------------------------

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type is discord.InteractionType.autocomplete:
            await self._autocomplete(interaction)
            return
        if interaction.type is discord.InteractionType.component:
            await self._button(interaction)
            return
        if interaction.type is not discord.InteractionType.application_command:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        name = str(data.get("name", ""))
        sub, args = _options(interaction.data)
        if not self._may_run(interaction, name, sub):
            await self._say(
                interaction,
                f"/{name} {sub} changes this channel for everyone, so on this server it "
                "needs the Manage Channels permission.",
            )
            return
        try:
            if name == "persona":
                await self._persona(interaction, sub, args)
            elif name == "link":
                await self._link(interaction)
            elif name == "server":
                await self._server(interaction, sub, args)
            elif name == "voice":
                await self.bot.voice.handle(interaction, sub, args)
            else:
                await self._plugin_command(interaction, name, args)
        except PersonaeError as exc:
            await self._say(interaction, str(exc))

    def _may_run(self, interaction: discord.Interaction[Any], name: str, sub: str | None) -> bool:
        """Moderated commands (``moderated_commands``) need Manage Channels in a
        server; in DMs everyone runs everything."""
        if interaction.guild_id is None:
            return True
        if f"{name} {sub}".strip() not in self.bot.discord_settings.moderated_commands:
            return True
        return bool(interaction.permissions.manage_channels)

    async def _say(
        self, interaction: discord.Interaction[Any], text: str, *, ephemeral: bool = True
    ) -> None:
        parts = split_message(text or "Done.", 2000)
        if not interaction.response.is_done():
            await interaction.response.send_message(parts[0], ephemeral=ephemeral)
            parts = parts[1:]
        for part in parts:
            await interaction.followup.send(part, ephemeral=ephemeral)

    async def _user_id(self, interaction: discord.Interaction[Any]) -> int:
        user = interaction.user
        return await self.runtime.users.resolve(PLATFORM, str(user.id), user.display_name)

    def _guild_id(self, interaction: discord.Interaction[Any]) -> int | None:
        return interaction.guild_id

    # -- plugin commands -------------------------------------------------------------

    async def _plugin_command(
        self, interaction: discord.Interaction[Any], name: str, args: dict[str, str]
    ) -> None:
        command = self.runtime.commands.get(name)
        if command is None:
            await self._say(interaction, f"/{name} is not available any more.")
            return
        rules = await self.bot.state.rules(self._guild_id(interaction))
        if not rules.allows_command(name):
            await self._say(interaction, f"/{name} is turned off on this server.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        user_id = await self._user_id(interaction)
        persona_id = await self.bot.active_persona(interaction.channel)
        scope = await self.runtime.personas.scope(persona_id, user_id)
        ctx = CommandContext(
            self.runtime,
            scope,
            PLATFORM,
            args,
            visible_id=persona_id,
            conversation=conversation_key(interaction.channel_id or 0),
            user_name=interaction.user.display_name,
        )
        try:
            result = await self.runtime.commands.run(command, ctx)
        except PersonaeError as exc:
            await interaction.followup.send(str(exc)[:2000], ephemeral=True)
            return
        if result.needs_confirmation:
            now = time.monotonic()
            self._pending = {k: p for k, p in self._pending.items() if p.expires > now}
            nonce = secrets.token_hex(8)
            self._pending[nonce] = _Pending(
                command, ctx, interaction.user.id, now + CONFIRM_TIMEOUT_SECONDS
            )
            await interaction.followup.send(
                result.text[:2000], view=confirm_buttons(nonce), ephemeral=True
            )
        elif result.attachment is not None:
            await self._send_file(interaction, result)
        else:
            for part in split_message(result.text or "Done.", 2000):
                await interaction.followup.send(part, ephemeral=True)

    async def _button(self, interaction: discord.Interaction[Any]) -> None:
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if not custom_id.startswith((CONFIRM, CANCEL)):
            return  # not ours
        nonce = custom_id.rsplit(":", 1)[-1]
        pending = self._pending.get(nonce)
        if pending is None or pending.expires < time.monotonic():
            self._pending.pop(nonce, None)
            await interaction.response.edit_message(
                content="This question has expired; run the command again.", view=None
            )
            return
        if interaction.user.id != pending.owner:
            await self._say(interaction, "Only the person who asked can answer this.")
            return
        del self._pending[nonce]
        if custom_id.startswith(CANCEL):
            await interaction.response.edit_message(content="Cancelled.", view=None)
            return
        await interaction.response.defer()
        ctx = pending.ctx
        confirmed = dataclasses.replace(ctx, confirmed=True)
        try:
            text = (await self.runtime.commands.run(pending.command, confirmed)).text
        except PersonaeError as exc:
            text = str(exc)
        await interaction.edit_original_response(content=text[:2000], view=None)

    async def _send_file(
        self, interaction: discord.Interaction[Any], result: CommandResult
    ) -> None:
        assert result.attachment is not None
        filename, content = result.attachment
        try:
            dm = await interaction.user.create_dm()
            await dm.send(result.text[:2000], file=discord.File(io.BytesIO(content), filename))
        except DELIVERY_ERRORS as exc:
            log.info("cannot DM user %s (%s); attaching here", interaction.user.id, exc)
            await interaction.followup.send(
                result.text[:2000], file=discord.File(io.BytesIO(content), filename), ephemeral=True
            )
            return
        await interaction.followup.send("I sent it to you in a direct message.", ephemeral=True)

    # -- /persona ----------------------------------------------------------------------

    async def _usable(self, interaction: discord.Interaction[Any]) -> list[Any]:
        """Personas the user may make active here: in a server only system and shared
        ones the server allows (others' private personas stay private)."""
        user_id = await self._user_id(interaction)
        rules = await self.bot.state.rules(self._guild_id(interaction))
        in_guild = interaction.guild_id is not None
        return [
            entry
            for entry in await self.runtime.personas.list(user_id)
            if rules.allows_persona(entry.id) and (not in_guild or entry.is_system or entry.shared)
        ]

    async def _persona(
        self, interaction: discord.Interaction[Any], sub: str | None, args: dict[str, str]
    ) -> None:
        channel = interaction.channel
        active = await self.bot.active_persona(channel)
        usable = {entry.id: entry for entry in await self._usable(interaction)}
        if sub == "list":
            lines = [
                f"{'▶' if pid == active else '•'} **{entry.card.name}** (`{pid}`)"
                for pid, entry in usable.items()
            ]
            await self._say(interaction, "\n".join(lines) or "No personas are allowed here.")
            return
        persona_id = args.get("persona") or active
        entry = usable.get(persona_id)
        if entry is None:
            await self._say(
                interaction, f"No persona `{persona_id}` here. /persona list shows them."
            )
            return
        if sub == "use":
            if channel is None:
                return
            guild_id = self._guild_id(interaction)
            await self.bot.state.set_active_persona(guild_id, channel.id, persona_id)
            await self._say(
                interaction, f"**{entry.card.name}** now answers in this channel.", ephemeral=False
            )
            return
        card = entry.card
        about = (card.creator_notes or card.description or "").strip()
        lines = [f"**{card.name}** (`{card.id}`){' — active here' if card.id == active else ''}"]
        if about:
            lines.append(about[:1500])
        if card.tags:
            lines.append("Tags: " + ", ".join(card.tags))
        await self._say(interaction, "\n".join(lines))

    async def _autocomplete(self, interaction: discord.Interaction[Any]) -> None:
        typed = _focused(interaction.data).lower()
        choices = [
            discord.app_commands.Choice(
                name=f"{entry.card.name} ({entry.id})"[:100], value=entry.id
            )
            for entry in await self._usable(interaction)
            if typed in entry.id or typed in entry.card.name.lower()
        ]
        await interaction.response.autocomplete(choices[:25])

    # -- /link ---------------------------------------------------------------------------

    async def _link(self, interaction: discord.Interaction[Any]) -> None:
        rules = await self.bot.state.rules(self._guild_id(interaction))
        if not rules.allows_command("link"):
            await self._say(interaction, "/link is turned off on this server.")
            return
        code = await self.bot.links.create(PLATFORM, str(interaction.user.id))
        where = self.bot.discord_settings.public_base_url or "the personae web UI"
        await self._say(
            interaction,
            f"Your link code: **{code}**\nEnter it in {where} while signed in, within 10 "
            "minutes. It works once, and then you have the same memory in both places.",
        )

    # -- /server -------------------------------------------------------------------------

    async def _server(
        self, interaction: discord.Interaction[Any], sub: str | None, args: dict[str, str]
    ) -> None:
        guild_id = interaction.guild_id
        if guild_id is None:
            await self._say(interaction, "/server works in a server only.")
            return
        if not interaction.permissions.manage_guild:
            await self._say(interaction, "Only members who can manage this server may do that.")
            return
        state = self.bot.state
        value = args.get("allow", "").strip()
        names = (
            None if value.lower() == "all" else [v.strip() for v in value.split(",") if v.strip()]
        )
        if sub == "personas":
            known = {entry.id for entry in await self.runtime.personas.list(None)}
            unknown = sorted(set(names or ()) - known)
            if unknown or names == []:
                await self._say(interaction, f"Unknown personas: {', '.join(unknown) or value}")
                return
            await state.set_allowed_personas(guild_id, names)
        elif sub == "commands":
            known = {c.name for c in self.runtime.commands.all()} | {"link", "voice"}
            unknown = sorted(set(names or ()) - known)
            if unknown:
                await self._say(interaction, f"Unknown commands: {', '.join(unknown)}")
                return
            await state.set_allowed_commands(guild_id, names)
        rules = await state.rules(guild_id)
        personas = ", ".join(sorted(rules.personas)) if rules.personas is not None else "all"
        commands = ", ".join(sorted(rules.commands)) if rules.commands is not None else "all"
        await self._say(interaction, f"Personas allowed: {personas}\nCommands allowed: {commands}")
