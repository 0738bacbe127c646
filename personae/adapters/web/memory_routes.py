"""Memory and the data contract: what a persona remembers about the caller (list,
edit, delete), export of all the caller's data, and "forget me"."""

from __future__ import annotations

import json
import re

from aiohttp import web

from personae.adapters.web.auth import current_user
from personae.adapters.web.helpers import iso, ok, runtime, settings, visible_persona
from personae.adapters.web.keys import ACCOUNTS
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import INTEGER_ID, PERSONA_ID, Endpoint, Param
from personae.adapters.web.schemas import (
    ForgetOut,
    MemoryItemOut,
    MemoryList,
    MemoryPatch,
    SummaryOut,
)
from personae.adapters.web.uploads import read_json
from personae.core.cards import card_to_dict
from personae.core.types import Scope
from personae.storage.records import MemoryRecord
from personae.storage.summaries import StoredSummary


def summary_outs(summaries: list[StoredSummary]) -> list[SummaryOut]:
    """Conversation summaries as the memory view shows them (web conversations
    by their name, others by their key)."""
    return [
        SummaryOut(
            conversation=s.conversation.removeprefix("web:"),
            text=s.text,
            through_id=s.through_id,
            created_at=s.created_at.isoformat() if s.created_at else None,
        )
        for s in summaries
    ]


def _item_out(item: MemoryRecord) -> MemoryItemOut:
    return MemoryItemOut(
        id=item.id,
        kind=item.kind,
        text=item.text,
        confidence=item.confidence,
        created_at=iso(item.created_at),
        updated_at=iso(item.updated_at),
    )


def _item_id(request: web.Request) -> int:
    raw = request.match_info["item_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise Problem(404, "Memory item not found", f"No memory item {raw!r}.")
    return int(raw)


async def list_memory(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    scope = Scope(entry.id, principal.user_id)
    items = await runtime(request).memory.list(scope)
    summaries = await runtime(request).summaries.store.newest_per_conversation(scope)
    return ok(
        MemoryList(items=[_item_out(item) for item in items], summaries=summary_outs(summaries))
    )


async def patch_memory(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    item_id = _item_id(request)
    body = await read_json(request, MemoryPatch, settings(request).web.max_body_bytes)
    item = await runtime(request).memory.update(
        Scope(entry.id, principal.user_id), item_id, text=body.text, kind=body.kind
    )
    if item is None:
        raise Problem(404, "Memory item not found", f"{entry.card.name} has no item {item_id}.")
    return ok(_item_out(item))


async def delete_memory(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    item_id = _item_id(request)
    if not await runtime(request).memory.delete(Scope(entry.id, principal.user_id), item_id):
        raise Problem(404, "Memory item not found", f"{entry.card.name} has no item {item_id}.")
    return web.Response(status=204)


def _forgot(counts: dict[str, int]) -> web.Response:
    return ok(ForgetOut(deleted=counts, total=sum(counts.values())))


async def forget_persona(request: web.Request) -> web.Response:
    """Forget the caller for one persona: every plugin deletes what it holds."""
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    return _forgot(await runtime(request).forget_user(principal.user_id, entry.id))


def _persona_query(request: web.Request) -> str | None:
    persona_id = request.query.get("persona_id") or None
    if persona_id is not None and not re.fullmatch(PERSONA_ID["pattern"], persona_id):
        raise Problem(422, "Invalid query parameter", "persona_id must be a persona id.")
    return persona_id


async def forget_me(request: web.Request) -> web.Response:
    """Forget the caller for every persona (or one named by ``?persona_id=``, even
    one the caller can no longer see: it is the caller's own data)."""
    principal = await current_user(request)
    persona_id = _persona_query(request)
    return _forgot(await runtime(request).forget_user(principal.user_id, persona_id))


async def export_me(request: web.Request) -> web.Response:
    principal = await current_user(request)
    persona_id = _persona_query(request)
    rt = runtime(request)
    data = await rt.export_user_data(principal.user_id, persona_id)
    account = await request.config_dict[ACCOUNTS].get(principal.user_id) or principal.account
    own = [e for e in await rt.personas.list(principal.user_id) if e.owner_id == principal.user_id]
    data["account"] = {
        "id": account.id,
        "username": account.username,
        "name": account.name,
        "current_persona": account.current_persona,
        "personas": [card_to_dict(e.card) for e in own if persona_id in (None, e.id)],
    }
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    return web.Response(
        body=body,
        content_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="personae-export.json"'},
    )


PID = {"persona_id": PERSONA_ID}
ITEM = {"persona_id": PERSONA_ID, "item_id": INTEGER_ID}
ONE = (Param("persona_id", PERSONA_ID, "Only this persona."),)
ENDPOINTS = [
    Endpoint("GET", "/api/personas/{persona_id}/memory", list_memory,
             "What a persona remembers about the caller", "memory", response=MemoryList,
             path_params=PID, errors=(404,)),
    Endpoint("PATCH", "/api/personas/{persona_id}/memory/{item_id}", patch_memory,
             "Edit a memory item", "memory", body=MemoryPatch, response=MemoryItemOut,
             path_params=ITEM, errors=(404,)),
    Endpoint("DELETE", "/api/personas/{persona_id}/memory/{item_id}", delete_memory,
             "Delete a memory item", "memory", status=204, path_params=ITEM, errors=(404,)),
    Endpoint("DELETE", "/api/personas/{persona_id}/data", forget_persona,
             "Forget me: everything this persona holds about the caller", "memory",
             response=ForgetOut, path_params=PID, errors=(404,)),
    Endpoint("DELETE", "/api/me/data", forget_me, "Forget me: every persona (or one)", "memory",
             response=ForgetOut, query=ONE),
    Endpoint("GET", "/api/me/export", export_me, "Export all the caller's data (JSON)", "memory",
             response={"type": "object"}, query=ONE),
]  # fmt: skip
