"""The application's state, under module-level :class:`aiohttp.web.AppKey` s.

Handlers read it with ``request.config_dict[KEY]`` so the app also works mounted
as a sub-application of an embedder's app.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from personae.adapters.web.events import EventHub
from personae.adapters.web.metrics import Metrics
from personae.adapters.web.ratelimit import LoginBackoff, RateLimiter
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.storage.accounts import AccountStore


@dataclass(slots=True)
class ServiceState:
    """Whether the service still accepts new turns, and how many replies are
    streaming (graceful shutdown lets those finish)."""

    accepting: bool = True
    active_streams: int = 0
    streams: set[asyncio.Task[Any]] = field(default_factory=set)
    """The handler tasks streaming a reply, cancelled if shutdown outlasts them."""


SETTINGS = web.AppKey("personae.settings", Settings)
RUNTIME = web.AppKey("personae.runtime", Runtime)
ACCOUNTS = web.AppKey("personae.accounts", AccountStore)
STATE = web.AppKey("personae.state", ServiceState)
EVENTS = web.AppKey("personae.events", EventHub)
METRICS = web.AppKey("personae.metrics", Metrics)
CHAT_LIMITER = web.AppKey("personae.chat_limiter", RateLimiter)
LOGIN_LIMITER = web.AppKey("personae.login_limiter", RateLimiter)
LOGIN_BACKOFF = web.AppKey("personae.login_backoff", LoginBackoff)
SIGNUP_LIMITER = web.AppKey("personae.signup_limiter", RateLimiter)
SIGNUP_GLOBAL_LIMITER = web.AppKey("personae.signup_global_limiter", RateLimiter)
