"""Small helpers the route modules share."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from personae.adapters.web.auth import Principal
from personae.adapters.web.keys import CHAT_LIMITER, RUNTIME, SETTINGS, STATE
from personae.adapters.web.problems import Problem
from personae.core.errors import PersonaNotFound
from personae.core.personas import PersonaEntry
from personae.core.runtime import Runtime
from personae.core.settings import Settings

_CONVERSATION = re.compile(r"[A-Za-z0-9_-]{1,64}")


def runtime(request: web.Request) -> Runtime:
    return request.config_dict[RUNTIME]


def settings(request: web.Request) -> Settings:
    return request.config_dict[SETTINGS]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def ok(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


async def visible_persona(request: web.Request, principal: Principal) -> PersonaEntry:
    """The persona named in the path if the caller may use it; else 404 (the same
    answer whether it does not exist or belongs to someone else)."""
    persona_id = request.match_info["persona_id"]
    try:
        return await runtime(request).personas.entry(persona_id, viewer=principal.user_id)
    except PersonaNotFound:
        raise Problem(404, "Persona not found", f"No persona {persona_id!r}.") from None


def conversation_name(value: str) -> str:
    if not _CONVERSATION.fullmatch(value):
        raise Problem(
            422,
            "Invalid conversation name",
            "A conversation name is 1-64 letters, digits, '-' or '_'.",
        )
    return value


def int_param(request: web.Request, name: str) -> int:
    """An integer path parameter; 404 when it is not one (no such object)."""
    raw = request.match_info[name]
    if not ascii_digits(raw) or len(raw) > 18:
        raise Problem(404, "Not found", f"No object with id {raw[:80]!r}.")
    return int(raw)


def ascii_digits(raw: str) -> bool:
    """Whether ``raw`` is a whole number written in ASCII digits. (``str.isdigit``
    and ``int`` also take other scripts' digits: ``int("\\u0667") == 7``.)"""
    return raw.isascii() and raw.isdigit()


def query_int(
    request: web.Request, name: str, default: int | None, low: int, high: int
) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    digits = raw[1:] if raw[:1] == "-" else raw
    if not ascii_digits(digits) or len(digits) > 18:
        raise Problem(422, "Invalid query parameter", f"{name} must be an integer.")
    value = int(raw)
    if not low <= value <= high:
        raise Problem(422, "Invalid query parameter", f"{name} must be between {low} and {high}.")
    return value


def check_chat_allowed(request: web.Request, principal: Principal) -> None:
    """Refuse new turns while shutting down (503) or over the user's rate (429)."""
    if not request.config_dict[STATE].accepting:
        raise Problem(
            503,
            "Shutting down",
            "The server is shutting down; try again shortly.",
            headers={"Retry-After": "5"},
        )
    wait = request.config_dict[CHAT_LIMITER].hit(principal.user_id)
    if wait is not None:
        raise Problem(
            429,
            "Too many requests",
            f"You are sending messages too fast; try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )


def json_dump(data: Any) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, default=str)
