"""Liveness, readiness (database and Ollama), Prometheus metrics, and the page
at ``/`` (the web UI when it is built)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from tortoise import Tortoise

from personae.adapters.web.auth import authenticate
from personae.adapters.web.helpers import runtime, settings
from personae.adapters.web.keys import METRICS, STATE
from personae.adapters.web.metrics import CONTENT_TYPE
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import Endpoint
from personae.core.errors import LLMTimeout, LLMUnavailable
from personae.core.llm.base import LLMBackend
from personae.core.llm.ollama import OllamaBackend, normalize_model_name
from personae.core.llm.transport import transport_failure

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>personae</title></head>
<body><h1>personae</h1>
<p>The web UI is not built yet. The HTTP API is running: see
<a href="/openapi.json">/openapi.json</a> and docs/http.md.</p></body></html>
"""
STATUS = {"type": "object", "properties": {"status": {"type": "string"}}}


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check_database() -> None:
    await Tortoise.get_connection("default").execute_query("SELECT 1")


@dataclass(frozen=True, slots=True)
class Readiness:
    """One component's state: a plain ``status`` anyone may see, and a ``detail``
    (addresses, the error) for the logs and for administrators."""

    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _failure(error: BaseException, timeout: float, where: str) -> Readiness:
    """Name what went wrong: refused, unreachable, no answer in time, or an error."""
    if isinstance(error, TimeoutError | LLMTimeout) or transport_failure(error) == "timeout":
        return Readiness(f"no answer within {timeout:g} s", f"{where}: no answer in time")
    detail = f"{where}: {error.__class__.__name__}: {error}"
    if _refused(error):
        return Readiness("connection refused", detail)
    if isinstance(error, LLMUnavailable | OSError) or transport_failure(error) == "connect":
        return Readiness("unreachable", detail)
    return Readiness("failing", detail)


def _refused(error: BaseException) -> bool:
    """Whether the server's address answered that nothing listens there."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionRefusedError) or "refused" in str(current).lower():
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


async def check_database(timeout: float) -> Readiness:
    try:
        await asyncio.wait_for(_check_database(), timeout)
    except Exception as error:
        return _failure(error, timeout, "database")
    return Readiness("ok")


async def _model_names(llm: LLMBackend) -> list[str]:
    """The installed models, asked once: Ollama's own client is called directly, so
    the backend's retries (seconds of backoff) do not hide a refused connection
    behind a timeout."""
    if isinstance(llm, OllamaBackend):
        response = await llm.client().list()
        return [m.model or "" for m in response.models]
    return [m.name for m in await llm.list_models()]


async def check_llm(llm: LLMBackend, model: str, timeout: float, where: str) -> Readiness:
    """Whether the LLM server answers and has ``model``; ``where`` names the server
    in the detail."""
    try:
        names = await asyncio.wait_for(_model_names(llm), timeout)
    except Exception as error:
        return _failure(error, timeout, where)
    wanted = normalize_model_name(model)
    if model and wanted not in {normalize_model_name(name) for name in names}:
        return Readiness("model not pulled", f"{where}: model {model} is not pulled")
    return Readiness("ok")


async def _is_admin(request: web.Request) -> bool:
    try:
        principal = await authenticate(request)
    except Problem:  # a bad token: answer as to anyone
        return False
    return principal is not None and principal.account.is_admin


async def readyz(request: web.Request) -> web.Response:
    """200 when the database answers and the LLM server has the default model.
    Everyone sees each component's plain status; administrators also see the
    details, which are logged."""
    config = settings(request)
    timeout = config.web.ready_timeout_seconds
    rt = runtime(request)
    ollama = config.llm_backend == "ollama"
    where, model = (config.ollama.host, config.ollama.model) if ollama else (config.llm_backend, "")
    database, llm = await asyncio.gather(
        check_database(timeout), check_llm(rt.llm, model, timeout, where)
    )
    accepting = request.config_dict[STATE].accepting
    states = {
        "database": database,
        "llm": llm,
        "accepting": Readiness("ok") if accepting else Readiness("shutting down"),
    }
    checks = {name: state.status for name, state in states.items()}
    ready = all(state.ok for state in states.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    if ready:
        return web.json_response(body)
    failing = {name: state for name, state in states.items() if not state.ok}
    for name, state in failing.items():
        log.warning("not ready: %s: %s", name, state.detail or state.status)
    problem: dict[str, object] = {
        "type": "about:blank",
        "title": "Not ready",
        "status": 503,
        "detail": ", ".join(f"{name}: {state.status}" for name, state in failing.items()),
        "checks": checks,
    }
    if await _is_admin(request):
        problem["details"] = {name: state.detail for name, state in failing.items() if state.detail}
    return web.json_response(problem, status=503, content_type="application/problem+json")


async def metrics(request: web.Request) -> web.Response:
    metrics_ = request.config_dict[METRICS]
    metrics_.sync_tokens(runtime(request).token_totals)
    body = metrics_.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def index(request: web.Request) -> web.StreamResponse:
    page = STATIC / "index.html"
    if page.is_file():
        return web.FileResponse(page)
    return web.Response(text=PLACEHOLDER, content_type="text/html")


ENDPOINTS = [
    Endpoint("GET", "/healthz", healthz, "Liveness", "health", response=STATUS, auth=False),
    Endpoint("GET", "/readyz", readyz, "Readiness: database and Ollama", "health",
             response=STATUS, auth=False, errors=(503,)),
    Endpoint("GET", "/metrics", metrics, "Prometheus metrics", "health",
             response_content="text/plain", auth=False),
]  # fmt: skip
