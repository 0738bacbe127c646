"""Settings of the HTTP service: the ``[web]`` table of the settings file, or
``PERSONAE_WEB__*`` environment variables."""

from __future__ import annotations

from ipaddress import ip_network

from pydantic import BaseModel, Field, field_validator


class WebSettings(BaseModel):
    """How ``personae serve`` listens, and the limits it enforces."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    session_lifetime_hours: float = Field(24 * 14, gt=0)
    """How long a browser login lasts."""
    cookie_secure: bool = False
    """Set the session cookie's ``Secure`` flag; turn on behind HTTPS."""
    cookie_name: str = "personae_session"
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    """The largest JSON request body accepted (larger ones get 413)."""
    max_upload_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    """The largest avatar image or character card upload accepted."""
    max_message_chars: int = Field(16_000, ge=1)
    chat_rate_per_minute: int = Field(30, ge=0)
    """Chat turns (and commands) one user may start per minute; 0 turns the limit off."""
    login_rate_per_minute: int = Field(10, ge=0)
    """Failed-login budget per client address per minute; 0 turns the limit off."""
    allow_signup: bool = True
    """Whether anyone may create an account; the first account can always be created
    (and becomes the administrator)."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks of reverse proxies whose ``X-Forwarded-For`` is believed."""
    ready_timeout_seconds: float = Field(3.0, gt=0)
    """How long ``/readyz`` waits for the database and Ollama."""
    shutdown_timeout_seconds: float = Field(30.0, ge=0)
    """How long in-flight replies may run on after shutdown begins."""
    auth_cache_seconds: float = Field(30.0, ge=0)
    """How long a token's or session's account is kept in memory, so chats do not
    wait on the database for it. Changes made through this process apply at once;
    a token revoked or a session ended by another process stops working within
    this time. 0 reads the database on every request."""
    avatar_max_pixels: int = Field(1024, ge=16)
    """Avatars are re-encoded to at most this many pixels a side."""

    @field_validator("trusted_proxies")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ip_network(item, strict=False)  # raises ValueError with a clear message
        return value
