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
    signup_rate_per_minute: int = Field(3, ge=0)
    """Sign-ups one client address may make per minute (each costs a 64 MiB Argon2
    hash); 0 turns the limit off."""
    signup_global_rate_per_minute: int = Field(20, ge=0)
    """Sign-ups the whole service accepts per minute, from all addresses together;
    0 turns the limit off."""
    login_failures_before_backoff: int = Field(5, ge=0)
    """Failed logins in a row one account name may have before each further attempt
    waits (1 s, 2 s, 4 s ... up to ``login_backoff_max_seconds``), from any address;
    0 turns the backoff off."""
    login_backoff_max_seconds: float = Field(900.0, gt=0)
    """The longest wait the login backoff imposes."""
    allow_signup: bool = True
    """Whether anyone may create an account. When closed, the very first account can
    still be created over HTTP if ``first_signup_admin`` is on (it becomes the
    administrator)."""
    first_signup_admin: bool = True
    """Make the first account created by signing up over HTTP the administrator. Turn
    off on a server reachable by others before its operator has an account, and make
    the first administrator with ``personae users create NAME --admin``."""
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
