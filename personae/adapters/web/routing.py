"""One table of endpoints: the app registers its routes from it and the OpenAPI
document is generated from it, so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PERSONA_ID: dict[str, Any] = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}
CONVERSATION: dict[str, Any] = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
INTEGER_ID: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 2**53}


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A route and what the OpenAPI document says about it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    """A JSON request body validated by this model."""
    raw_body: dict[str, Any] | None = None
    """Request body content map for non-JSON bodies (uploads)."""
    response: type[BaseModel] | dict[str, Any] | None = None
    """The JSON schema of the success answer (a model or a schema)."""
    response_content: str = "application/json"
    status: int = 200
    auth: bool = True
    query: tuple[Param, ...] = ()
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    """Error statuses besides the ones every endpoint may answer."""
    description: str = ""
    sse: bool = False
    """The endpoint may answer with ``text/event-stream``."""
