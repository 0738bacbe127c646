"""Liveness, readiness (database and Ollama), Prometheus metrics, and the page
at ``/`` (the web UI when it is built)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

from aiohttp import web
from tortoise import Tortoise

from personae.adapters.web.helpers import runtime, settings
from personae.adapters.web.keys import METRICS, STATE
from personae.adapters.web.metrics import CONTENT_TYPE
from personae.adapters.web.routing import Endpoint

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


async def _within(work: Awaitable[object], timeout: float) -> str:
    try:
        await asyncio.wait_for(work, timeout)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except Exception as error:
        return f"failing: {error}"
    return "ok"


async def readyz(request: web.Request) -> web.Response:
    """200 when the database answers and the LLM server lists its models."""
    timeout = settings(request).web.ready_timeout_seconds
    rt = runtime(request)
    database, llm = await asyncio.gather(
        _within(_check_database(), timeout), _within(rt.llm.list_models(), timeout)
    )
    accepting = request.config_dict[STATE].accepting
    checks = {"database": database, "llm": llm, "accepting": "ok" if accepting else "shutting down"}
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    if ready:
        return web.json_response(body)
    failing = ", ".join(f"{name}: {value}" for name, value in checks.items() if value != "ok")
    problem = {
        "type": "about:blank",
        "title": "Not ready",
        "status": 503,
        "detail": failing,
        "checks": checks,
    }
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
