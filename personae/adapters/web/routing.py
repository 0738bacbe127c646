"""One table of endpoints: the app registers its routes from it and the OpenAPI
document is generated from it, so the two cannot drift apart."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from personae.adapters.web.problems import Problem

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


def _param_ok(raw: str, schema: dict[str, Any]) -> bool:
    """Whether a path parameter matches its schema. Integers are ASCII digits only
    (``int()`` reads Arabic-Indic seven as 7 and fails on superscript two)."""
    if schema.get("type") == "integer":
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            return False
        value = int(raw)
        return schema.get("minimum", value) <= value <= schema.get("maximum", value)
    pattern = schema.get("pattern")
    if pattern is not None and re.fullmatch(pattern, raw, re.ASCII) is None:
        return False
    return len(raw) <= schema.get("maxLength", 1024)


def _bad_param(name: str, raw: str, schema: dict[str, Any]) -> Problem:
    shown = repr(raw[:80]) + ("..." if len(raw) > 80 else "")
    if schema is CONVERSATION:
        return Problem(
            422,
            "Invalid conversation name",
            "A conversation name is 1-64 letters, digits, '-' or '_'.",
        )
    return Problem(404, "Not found", f"There is no {name.replace('_', ' ')} {shown}.")


def guarded(endpoint: Endpoint) -> Handler:
    """The endpoint's handler behind the checks every route shares, so no handler
    meets input its storage cannot take: each path parameter must match the schema
    the OpenAPI document gives it (404 when it cannot name an object, 422 for a bad
    conversation name), and no path parameter or query value may hold a NUL
    character (PostgreSQL refuses them in text)."""
    schemas = endpoint.path_params
    handler = endpoint.handler

    async def checked(request: web.Request) -> web.StreamResponse:
        for name, raw in request.match_info.items():
            schema = schemas.get(name, {"type": "string", "maxLength": 256})
            if not _param_ok(raw, schema):
                raise _bad_param(name, raw, schema)
        for key, value in request.query.items():
            if "\x00" in key or "\x00" in value:
                raise Problem(
                    400, "Invalid query string", "The query string holds a NUL character."
                )
        return await handler(request)

    checked.__name__ = getattr(handler, "__name__", "handler")
    checked.__doc__ = handler.__doc__
    return checked
