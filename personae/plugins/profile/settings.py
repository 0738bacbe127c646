"""Settings of the profile plugin: ``[plugin_settings.profile]`` in the settings file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personae.core.errors import ConfigError

if TYPE_CHECKING:
    from personae.core.settings import Settings


class ProfileSettings(BaseModel):
    """How the profile plugin learns and limits what a persona remembers.

    Extraction is batched: it runs once ``extract_after_messages`` user messages or
    ``extract_after_chars`` characters of user text have gathered in a
    conversation, or when the conversation has been idle for ``idle_seconds``."""

    model_config = ConfigDict(extra="forbid")

    learn: bool = True
    """Learn from conversations at all (recall and /profile work either way)."""
    extract_after_messages: int = Field(6, ge=1)
    extract_after_chars: int = Field(1500, ge=1)
    idle_seconds: float = Field(300.0, ge=0)
    max_items: int = Field(200, ge=1)
    """Items per (persona, user) scope; the least useful are evicted beyond it."""
    max_item_chars: int = Field(300, ge=20)
    """Longer items are refused."""
    min_confidence: float = Field(0.3, ge=0, le=1)
    """Items the model is less sure of are not stored."""
    known_items_in_prompt: int = Field(60, ge=0)
    """How many known items the extraction prompt shows for consolidation."""
    model: str | None = None
    """The model for extraction; None = the configured default."""
    llm_timeout: float = Field(60.0, gt=0)
    recall_context_messages: int = Field(4, ge=0)
    """Recent conversation messages that also steer recall (at half weight)."""
    embeddings: bool = False
    """Also rank recall by embedding similarity (Ollama ``/api/embed``)."""
    embed_model: str | None = None
    """None = ``ollama.embed_model``, else the chat model."""
    embed_timeout: float = Field(5.0, gt=0)
    tick_seconds: float = Field(15.0, ge=0)
    """How often the idle check runs; 0 turns the background loop off (call
    :func:`personae.plugins.profile.tick` yourself)."""


def load_profile_settings(settings: Settings) -> ProfileSettings:
    """Validate ``plugin_settings.profile``; a :class:`ConfigError` names the bad keys."""
    raw = settings.plugin_settings.get("profile", {})
    try:
        return ProfileSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"Invalid [plugin_settings.profile]: {problems}") from None
