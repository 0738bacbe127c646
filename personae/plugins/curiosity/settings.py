"""Settings of the curiosity plugin: ``[plugin_settings.curiosity]``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personae.core.errors import ConfigError

if TYPE_CHECKING:
    from personae.core.settings import Settings

Level = Literal["low", "medium", "high"]


class LevelPolicy(BaseModel):
    """How often a persona of one curiosity level may ask a user something."""

    model_config = ConfigDict(extra="forbid")

    cooldown_seconds: float = Field(ge=0)
    """The least time between two follow-ups to the same user."""
    max_per_window: int = Field(ge=0)
    """At most this many follow-ups per ``window_seconds``."""


def _default_levels() -> dict[Level, LevelPolicy]:
    return {
        "low": LevelPolicy(cooldown_seconds=86400, max_per_window=1),
        "medium": LevelPolicy(cooldown_seconds=6 * 3600, max_per_window=2),
        "high": LevelPolicy(cooldown_seconds=3600, max_per_window=4),
    }


class CuriositySettings(BaseModel):
    """When and how personas ask their users follow-up questions.

    ``mode``: ``"woven"`` asks inside the next reply; ``"separate"`` sends a
    message of its own after ``idle_seconds`` of silence, through an adapter that
    can deliver proactive messages; ``"auto"`` (default) sends separately where the
    platform can deliver, and weaves elsewhere."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "woven", "separate"] = "auto"
    idle_seconds: float = Field(600.0, ge=0)
    expire_seconds: float = Field(86400.0, ge=0)
    """A separate follow-up still undelivered this long after it was due is cancelled."""
    window_seconds: float = Field(86400.0, gt=0)
    min_exchanges: int = Field(2, ge=0)
    """Exchanges a conversation needs before the persona asks anything."""
    levels: dict[Level, LevelPolicy] = Field(default_factory=_default_levels)
    model: str | None = None
    """The model that writes separate questions; None = the configured default."""
    llm_timeout: float = Field(30.0, gt=0)
    max_question_chars: int = Field(300, ge=20)
    tick_seconds: float = Field(15.0, ge=0)
    """How often due follow-ups are checked; 0 turns the background loop off (call
    :func:`personae.plugins.curiosity.tick` yourself)."""


def load_curiosity_settings(settings: Settings) -> CuriositySettings:
    """Validate ``plugin_settings.curiosity``; a :class:`ConfigError` names the bad keys."""
    raw = dict(settings.plugin_settings.get("curiosity", {}))
    levels = {**_default_levels(), **raw.pop("levels", {})}
    try:
        return CuriositySettings.model_validate({**raw, "levels": levels})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"Invalid [plugin_settings.curiosity]: {problems}") from None
