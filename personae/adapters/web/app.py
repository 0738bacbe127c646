"""The application factory: :func:`init_app` builds the aiohttp app for a
:class:`~personae.core.settings.Settings`.

Resources live in ``cleanup_ctx``: the runtime (unless the embedder passes its
own), the proactive delivery subscription and the event streams. Shutdown is
graceful: the app stops accepting turns, ends the event streams with a
``shutdown`` event, lets replies in flight finish (aiohttp waits for handlers up
to its shutdown timeout; a reply cut off then ends with an ``error`` event, and
an unfinished turn stores nothing), then the runtime drains background work.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterable

from aiohttp import web

from personae.adapters.web import (
    accounts_routes,
    chat_routes,
    commands_routes,
    events_routes,
    health,
    link_routes,
    lorebook_routes,
    memory_routes,
    openai_routes,
    personas_routes,
    voice_routes,
)
from personae.adapters.web.events import EventHub
from personae.adapters.web.keys import (
    ACCOUNTS,
    CHAT_LIMITER,
    EVENTS,
    LOGIN_BACKOFF,
    LOGIN_LIMITER,
    METRICS,
    RUNTIME,
    SETTINGS,
    SIGNUP_GLOBAL_LIMITER,
    SIGNUP_LIMITER,
    STATE,
    ServiceState,
)
from personae.adapters.web.metrics import Metrics
from personae.adapters.web.openapi import build_openapi, openapi_handler
from personae.adapters.web.problems import problem_middleware
from personae.adapters.web.ratelimit import LoginBackoff, RateLimiter
from personae.adapters.web.routing import Endpoint, guarded
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.storage.accounts import AccountStore

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
HTML_POLICY = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"


def endpoints() -> list[Endpoint]:
    """Every API endpoint, in routing order."""
    return [
        *health.ENDPOINTS,
        *accounts_routes.ENDPOINTS,
        *personas_routes.ENDPOINTS,
        *lorebook_routes.ENDPOINTS,
        *chat_routes.ENDPOINTS,
        *memory_routes.ENDPOINTS,
        *commands_routes.ENDPOINTS,
        *events_routes.ENDPOINTS,
        *openai_routes.ENDPOINTS,
        *voice_routes.ENDPOINTS,
        *link_routes.ENDPOINTS,
    ]


def init_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    accounts: AccountStore | None = None,
) -> web.Application:
    """The personae HTTP service as an aiohttp application.

    Without ``runtime`` the app starts and stops a :class:`Runtime` of its own
    (which connects the database); an embedder that already runs one passes it
    and keeps it (started) for the app's lifetime. ``accounts`` replaces the
    account store (e.g. with a cheaper password hasher in tests)."""
    config = settings.web
    metrics = Metrics()
    app = web.Application(
        client_max_size=max(config.max_body_bytes, config.max_upload_bytes) + 64 * 1024,
        middlewares=[metrics.middleware(), problem_middleware],
    )
    app[SETTINGS] = settings
    app[ACCOUNTS] = accounts or AccountStore(cache_seconds=settings.web.auth_cache_seconds)
    app[STATE] = ServiceState()
    app[EVENTS] = EventHub()
    app[METRICS] = metrics
    app[CHAT_LIMITER] = RateLimiter(config.chat_rate_per_minute)
    app[LOGIN_LIMITER] = RateLimiter(config.login_rate_per_minute)
    app[LOGIN_BACKOFF] = LoginBackoff(
        config.login_failures_before_backoff, config.login_backoff_max_seconds
    )
    app[SIGNUP_LIMITER] = RateLimiter(config.signup_rate_per_minute)
    app[SIGNUP_GLOBAL_LIMITER] = RateLimiter(config.signup_global_rate_per_minute)
    app.cleanup_ctx.append(_runtime_context(runtime))
    app.cleanup_ctx.append(_proactive_context)
    app.on_shutdown.append(_begin_shutdown)
    app.on_response_prepare.append(_security_headers)
    table = endpoints()
    _add_routes(app, table)
    document = build_openapi(table, cookie_name=config.cookie_name)
    app.router.add_get("/openapi.json", openapi_handler(document), name="openapi")
    app.router.add_get("/", health.index, name="index")
    if health.STATIC.is_dir():
        app.router.add_static("/static/", health.STATIC, name="static")
    return app


def _add_routes(app: web.Application, table: Iterable[Endpoint]) -> None:
    for endpoint in table:
        app.router.add_route(endpoint.method, endpoint.path, guarded(endpoint))


def _runtime_context(
    runtime: Runtime | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def runtime_context(app: web.Application) -> AsyncIterator[None]:
        if runtime is not None:
            app[RUNTIME] = runtime
            yield
            return
        own = Runtime(app[SETTINGS])
        await own.start()
        app[RUNTIME] = own
        try:
            yield
        finally:
            await own.stop()

    return runtime_context


async def _proactive_context(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME]
    unsubscribe = rt.proactive.subscribe(
        events_routes.PLATFORM, events_routes.proactive_handler(app[EVENTS])
    )
    try:
        yield
    finally:
        unsubscribe()


async def _begin_shutdown(app: web.Application) -> None:
    """Stop accepting turns and end the event streams; let replies in flight
    finish for up to ``web.shutdown_timeout_seconds``, then cut them off with an
    error event (their turns store nothing)."""
    state = app[STATE]
    state.accepting = False
    await app[EVENTS].close()
    streams = set(state.streams)
    if not streams:
        return
    _, late = await asyncio.wait(streams, timeout=app[SETTINGS].web.shutdown_timeout_seconds)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=5.0)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", HTML_POLICY)


async def freeze_startup_objects(app: web.Application) -> None:
    """An ``on_startup`` handler for a process that only serves this app (what
    ``personae serve`` does): move everything built at startup (modules, plugins,
    personas, schemas) out of the garbage collector's view. A full collection
    then walks only what requests created; on a loaded server, collections
    walking the whole heap stopped the event loop for 100-175 ms at a time."""
    gc.collect()
    gc.freeze()
