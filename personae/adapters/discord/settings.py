"""Settings of the Discord adapter: the ``[discord]`` table of the settings file, or
``PERSONAE_DISCORD__*`` environment variables (``PERSONAE_DISCORD__TOKEN=...``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator


class DiscordSettings(BaseModel):
    """How ``personae discord`` connects to Discord and how its personas behave there."""

    token: SecretStr | None = None
    """The bot token (Developer Portal -> your application -> Bot -> Reset Token).
    ``DISCORD_TOKEN`` in the environment is used when this is not set."""
    shard_count: int | None = Field(None, ge=1)
    """Total number of shards; None asks Discord for the recommended count."""
    shard_ids: list[int] | None = None
    """The shards this process runs (needs ``shard_count``); None runs them all."""
    default_persona: str | None = None
    """The persona a channel starts with; None uses the global ``default_persona``."""
    respond_to_names: bool = True
    """Answer a message that names the channel's active persona ("Sage, ...")."""
    use_webhooks: bool = True
    """Speak through a channel webhook (each persona with its own name and avatar)
    when the bot has Manage Webhooks; otherwise plain messages headed with the name."""
    webhook_name: str = "personae"
    public_base_url: str | None = None
    """Where the web service is reachable from the internet (``https://bots.example``);
    persona avatars stored by the web UI are then shown on Discord too."""
    edit_interval_seconds: float = Field(1.0, ge=0)
    """At most one edit of a streaming reply per channel in this interval."""
    moderated_commands: list[str] = Field(
        default_factory=lambda: ["persona use", "voice join", "voice leave"]
    )
    """Commands that, in a server, need the Manage Channels permission (they change
    the channel for everyone). Discord's own per-command permissions cover whole
    commands only, so these sub-commands are checked by the bot; server admins can
    still restrict whole commands in Server Settings -> Integrations."""
    user_cooldown_seconds: float = Field(1.0, ge=0)
    """A person's messages closer together than this are not answered (one notice)."""
    max_queued_per_channel: int = Field(5, ge=1)
    """At most this many messages wait for a channel's turn; later ones get a
    "busy, try again" notice instead of an ever longer queue."""
    blocked_user_ids: list[int] = Field(default_factory=list)
    """Discord users the bot never answers (messages, commands)."""
    ignored_channel_ids: list[int] = Field(default_factory=list)
    """Channels (and their threads) the bot never answers in."""
    delivery_timeout_seconds: float = Field(15.0, gt=0)
    """How long one message, edit or typing request to Discord may take before the
    bot gives up on it (a stalled connection must not hold the channel's turn)."""
    max_message_chars: int = Field(2000, ge=100, le=2000)
    sync_commands: bool = True
    """Register the slash commands with Discord at start-up (by the process that runs
    shard 0, or the only process)."""
    command_guild_ids: list[int] = Field(default_factory=list)
    """Register the slash commands in these guilds only (instant, for development)
    instead of globally."""
    state_dir: Path | None = None
    """Where per-guild settings (active personas, restrictions) are kept; default
    ``<data_dir>/discord``. Share it between processes that split the shards."""
    guild_ready_timeout: float = Field(2.0, gt=0)
    """discord.py: how long to wait for GUILD_CREATE events after READY."""
    identify_delay_seconds: float = Field(5.0, ge=0)
    """Pause between the IDENTIFYs of this process's shards (Discord allows one per
    5 seconds per bucket)."""
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    """How long replies in flight may finish when the bot stops."""
    api_base: str | None = None
    """Override of Discord's REST base (``https://discord.com/api/v10``), for proxies
    and tests. Applies to the whole process."""
    gateway_url: str | None = None
    """Override of the gateway URL used when the shard count is fixed or a session is
    invalidated, for proxies and tests. Applies to the whole process."""

    @model_validator(mode="after")
    def _check_shards(self) -> DiscordSettings:
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("shard_ids needs shard_count")
            bad = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
            if bad or not self.shard_ids:
                raise ValueError(f"shard_ids must be in 0..{self.shard_count - 1}")
        return self
