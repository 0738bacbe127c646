"""Prometheus metrics of one app (its own registry, so several apps can live in
one process): requests, latency, turns, LLM errors, and the model's tokens
(prompt, evaluated, served from the prompt cache, generated)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from personae.adapters.web.routing import Handler

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "personae_http_requests",
            "HTTP requests answered, by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "personae_http_request_duration_seconds",
            "Time to answer a request (whole stream for SSE), by route.",
            ["method", "route"],
            registry=self.registry,
        )
        self.turns = Counter(
            "personae_turns",
            "Chat turns, by front end and outcome (completed, failed, abandoned).",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.llm_errors = Counter(
            "personae_llm_errors",
            "Language model failures during turns, by error kind.",
            ["kind"],
            registry=self.registry,
        )
        self.active_streams = Gauge(
            "personae_active_streams",
            "Replies being streamed right now.",
            registry=self.registry,
        )
        self.event_streams = Gauge(
            "personae_event_streams",
            "Open /api/events streams.",
            registry=self.registry,
        )

        self.tokens = Counter(
            "personae_llm_tokens",
            "Tokens the model reported for replies, by kind: prompt (whole prompts), "
            "evaluated (prompt tokens the model computed), cached (prompt tokens read "
            "from its prompt cache), completion (generated).",
            ["kind"],
            registry=self.registry,
        )
        self._tokens_seen: dict[str, int] = {}

    def sync_tokens(self, totals: Mapping[str, int]) -> None:
        """Bring the token counters up to the runtime's totals (every front end's
        turns count, not only this app's)."""
        for kind, total in totals.items():
            delta = total - self._tokens_seen.get(kind, 0)
            if delta > 0:
                self.tokens.labels(kind).inc(delta)
            self._tokens_seen[kind] = total

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self) -> web.middleware:  # type: ignore[valid-type]
        @web.middleware
        async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                resource = request.match_info.route.resource
                route = resource.canonical if resource is not None else "unmatched"
                self.requests.labels(request.method, route, str(status)).inc()
                self.latency.labels(request.method, route).observe(time.perf_counter() - started)

        return measure
