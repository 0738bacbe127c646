"""Settings: ``config/personae.toml`` (or ``--config`` / ``PERSONAE_CONFIG``) plus
``PERSONAE_*`` environment variables, which win. Nested keys use ``__`` in the
environment: ``PERSONAE_OLLAMA__HOST=http://gpu-box:11434``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from personae.adapters.discord.settings import DiscordSettings
from personae.adapters.web.settings import WebSettings
from personae.core.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/personae.toml")


class OllamaSettings(BaseModel):
    """How to reach Ollama and which model to use by default."""

    host: str = "http://127.0.0.1:11434"
    """Where Ollama listens."""
    model: str = "llama3.2"
    """The model personas use unless their card names one (``ollama pull`` it first)."""
    embed_model: str | None = None
    """The model for embeddings (recall by similarity); None = the chat model."""
    connect_timeout: float = Field(5.0, gt=0)
    """Seconds to wait for a connection to Ollama."""
    read_timeout: float = Field(120.0, gt=0)
    """Seconds Ollama may stay silent (before the first word, or between words)."""
    max_connections: int = Field(100, ge=1)
    """Connections to Ollama each process keeps open and reuses; turns beyond
    this many at once wait for one to be free."""
    retries: int = Field(3, ge=0, le=10)
    """How often a failed connection is tried again before the user sees the error."""
    retry_backoff: float = Field(0.5, ge=0)
    """Seconds before the first retry; doubles with each one."""
    keep_alive: str | float | None = "5m"
    """How long Ollama keeps the model loaded after a request (``"5m"``, seconds, -1)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Default model options, e.g. ``{temperature = 0.8}``."""
    num_ctx: int | None = Field(None, ge=256)
    """The context window (tokens) sent on every request to every model. None:
    a persona's ``options.num_ctx``, else ``options.num_ctx`` here, else the
    model's own length from ``/api/show`` capped at ``default_num_ctx``."""
    default_num_ctx: int = Field(8192, ge=256)
    """The window used when nothing sets one: min(the model's length, this)."""
    fallback_num_ctx: int = Field(2048, ge=256)
    """The window assumed when ``/api/show`` does not say the model's length
    (logged once per model): Ollama's smallest default."""
    num_predict: int = Field(512, ge=16)
    """Tokens reserved for the reply in every window (and sent as
    ``num_predict`` unless the options set one)."""


class MemorySettings(BaseModel):
    """How much remembered material reaches a prompt."""

    recall_budget_tokens: int = Field(400, ge=0)
    """Tokens of remembered items a prompt may hold."""
    recall_max_items: int = Field(12, ge=0)
    """At most this many remembered items per prompt."""
    recall_candidates: int = Field(200, ge=1)
    """How many stored items a recall ranks before choosing what fits."""
    history_messages: int = Field(200, ge=0)
    """The most messages read for one prompt; the token budget decides how many
    of them are sent (the history is trimmed in blocks, see docs/context.md)."""
    summary_max_tokens: int = Field(300, ge=0)
    """The longest conversation summary placed in a prompt; 0 turns the rolling
    summary of what falls out of the window off."""
    history_cache_conversations: int = Field(1000, ge=0)
    """How many conversations' last messages each process keeps in memory, so a
    turn starts the model without waiting for the database (the stored history is
    still read during the turn and wins if it differs); 0 turns this off."""


class LorebookSettings(BaseModel):
    """How a card's lorebook (World Info) is scanned; SillyTavern's defaults."""

    scan_depth: int = Field(2, ge=0, le=1000)
    """How many of the last messages (the new one included) are searched for keys,
    unless the card's book or an entry sets its own."""
    recursive: bool = False
    """Whether activated entries' text can activate further entries."""
    max_recursion_steps: int = Field(3, ge=1, le=10)
    budget_tokens: int = Field(1000, ge=0)
    """The most tokens activated entries may take per turn (the highest insertion
    order kept first); the model's window may leave less."""


class RuntimeSettings(BaseModel):
    """Work done after the reply, and stopping."""

    background_concurrency: int = Field(4, ge=1)
    """Background jobs (learning, follow-ups, speech) running at once."""
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    """How long background work may finish when personae stops."""
    turn_deadline_seconds: float = Field(600.0, gt=0)
    """A turn still running after this long (waiting for earlier turns of its
    conversation included) is stopped and stores nothing: a stalled model call
    must not hold a conversation."""
    stall_seconds: float = Field(60.0, gt=0)
    """A reply nobody reads for this long is abandoned (its model call cancelled,
    nothing stored), so a reader that went away cannot hold its conversation."""
    max_concurrent_turns: int = Field(64, ge=1)
    """Turns running at once in this process (each holds a model call)."""
    max_waiting_turns: int = Field(256, ge=0)
    """Turns that may wait for a place; beyond that a turn is refused at once with
    "busy, try again" (HTTP 503) instead of queueing without end."""


class Settings(BaseSettings):
    """All of personae's settings. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="PERSONAE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Path("data")
    """Where the SQLite database, avatars and voice samples live (created on first run)."""
    database_url: str | None = None
    """``sqlite://path/to/file.db`` (default: ``<data_dir>/personae.db``) or
    ``postgres://user@host:5432/db`` when several processes share the load."""
    default_persona: str = "sage"
    """The persona ``personae chat`` talks to when --persona is not given."""
    llm_backend: str = "ollama"
    """The name of the registered LLM backend to use."""
    persona_dirs: list[Path] = Field(default_factory=list)
    """Extra folders of character cards (``*.json``/``*.png``) loaded as system personas."""
    plugins: list[str] = Field(default_factory=list)
    """Extra plugin modules to load by import path, besides entry points."""
    disabled_plugins: list[str] = Field(default_factory=list)
    """Plugin names (built-in or entry point) not to load."""
    ollama: OllamaSettings = Field(default_factory=lambda: OllamaSettings())
    memory: MemorySettings = Field(default_factory=lambda: MemorySettings())
    runtime: RuntimeSettings = Field(default_factory=lambda: RuntimeSettings())
    lorebook: LorebookSettings = Field(default_factory=lambda: LorebookSettings())
    web: WebSettings = Field(default_factory=lambda: WebSettings())
    discord: DiscordSettings = Field(default_factory=lambda: DiscordSettings())
    plugin_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-plugin settings tables: ``[plugin_settings.profile]``."""

    _config_file: Path | None = None

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite://{self.data_dir / 'personae.db'}"
        return self

    @property
    def db_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _CONFIG_PATH.get("path")
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


_CONFIG_PATH: dict[str, Path | None] = {}


def resolve_config_path(explicit: str | Path | None = None) -> Path | None:
    """The settings file to read: explicit, else $PERSONAE_CONFIG, else
    ``config/personae.toml`` when it exists in the working directory."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"Settings file {path} does not exist.")
        return path
    env = os.environ.get("PERSONAE_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"PERSONAE_CONFIG points at {path}, which does not exist.")
        return path
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def _environment_variable(loc: tuple[int | str, ...]) -> str | None:
    """The ``PERSONAE_*`` variable that set the value at ``loc`` (or a table
    holding it, such as ``PERSONAE_OLLAMA`` for ``ollama.retries``), if any."""
    present = {name.upper() for name in os.environ}
    keys = [str(part).upper() for part in loc]
    for end in range(len(keys), 0, -1):
        name = "PERSONAE_" + "__".join(keys[:end])
        if name in present:
            return name
    return None


def _describe_invalid(exc: ValidationError, path: Path | None) -> str:
    """Which settings are wrong, each blamed on where its value came from: the
    environment variable by name, else the settings file."""
    from_env: list[str] = []
    from_file: list[str] = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        variable = _environment_variable(err["loc"])
        if variable is not None:
            from_env.append(f"{variable} ({key}): {err['msg']}")
        else:
            from_file.append(f"{key}: {err['msg']}")
    parts = []
    if from_env:
        parts.append(f"Invalid setting in the environment: {'; '.join(from_env)}")
    if from_file:
        where = f" in {path}" if path else ""
        parts.append(f"Invalid settings{where}: {'; '.join(from_file)}")
    return ". ".join(parts)


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings from the file, the environment and ``overrides`` (highest first:
    overrides, environment, file, defaults). Raises :class:`ConfigError` with the
    offending keys when they are invalid."""
    path = resolve_config_path(config)
    _CONFIG_PATH["path"] = path
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe_invalid(exc, path)) from None
    except ValueError as exc:  # e.g. TOML syntax errors
        raise ConfigError(f"Cannot read settings file {path}: {exc}") from None
    finally:
        _CONFIG_PATH.pop("path", None)
    settings._config_file = path
    return settings
