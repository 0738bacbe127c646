"""Memory and the data contract: what a persona remembers about the caller (list,
edit, delete), export of all the caller's data, and "forget me"."""

from __future__ import annotations

import json
import re

from aiohttp import web

from personae.adapters.web.auth import Principal, current_user
from personae.adapters.web.helpers import ascii_digits, iso, ok, runtime, settings, visible_persona
from personae.adapters.web.keys import ACCOUNTS
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import INTEGER_ID, PERSONA_ID, Endpoint, Param
from personae.adapters.web.schemas import (
    ForgetOut,
    MemoryHistory,
    MemoryItemOut,
    MemoryList,
    MemoryPatch,
    RevisionOut,
    SummaryOut,
)
from personae.adapters.web.uploads import read_json
from personae.core.cards import card_to_dict
from personae.plugins.profile.safety import screen_memory
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
    if not ascii_digits(raw) or len(raw) > 18:
        raise Problem(404, "Memory item not found", f"No memory item {raw!r}.")
    return int(raw)


async def list_memory(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    scope = entry.scope(principal.user_id)
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
    text = None
    if body.text is not None:
        text, refused = screen_memory(body.text)
        if refused is not None:
            raise Problem(422, "Memory text refused", f"This text cannot be stored: {refused}.")
    item = await runtime(request).memory.update(
        entry.scope(principal.user_id), item_id, text=text, kind=body.kind
    )
    if item is None:
        raise Problem(404, "Memory item not found", f"{entry.card.name} has no item {item_id}.")
    return ok(_item_out(item))


async def memory_history(request: web.Request) -> web.Response:
    """An item's history, oldest first: its updates, what was merged into it, its
    retirement. 404 when the scope has neither the item nor a history of it."""
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    item_id = _item_id(request)
    scope = entry.scope(principal.user_id)
    memory = runtime(request).memory
    revisions = await memory.revisions(scope, item_id=item_id)
    if not revisions and await memory.get(scope, item_id) is None:
        raise Problem(404, "Memory item not found", f"{entry.card.name} has no item {item_id}.")
    out = [RevisionOut(**revision.as_dict()) for revision in revisions]
    return ok(MemoryHistory(item_id=item_id, revisions=out))


async def delete_memory(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    item_id = _item_id(request)
    if not await runtime(request).memory.delete(entry.scope(principal.user_id), item_id):
        raise Problem(404, "Memory item not found", f"{entry.card.name} has no item {item_id}.")
    return web.Response(status=204)


def _forgot(counts: dict[str, int]) -> web.Response:
    return ok(ForgetOut(deleted=counts, total=sum(counts.values())))


async def forget_persona(request: web.Request) -> web.Response:
    """Forget the caller for one persona: every plugin deletes what it holds."""
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    return _forgot(await runtime(request).forget_user(principal.user_id, entry.key))


def _persona_query(request: web.Request) -> str | None:
    persona_id = request.query.get("persona_id") or None
    if persona_id is not None and not re.fullmatch(PERSONA_ID["pattern"], persona_id):
        raise Problem(422, "Invalid query parameter", "persona_id must be a persona id.")
    return persona_id


async def _persona_key(request: web.Request, principal: Principal) -> str | None:
    """The key of the persona ``?persona_id=`` names for the caller; an id the caller
    can no longer see stands for itself (what was stored under it before keys)."""
    persona_id = _persona_query(request)
    if persona_id is None:
        return None
    return (await runtime(request).personas.scope(persona_id, principal.user_id)).persona_id


async def _hidden_keys(request: web.Request, persona_id: str) -> list[str]:
    """The keys of every stored persona with this id: the caller's own data may lie
    under one the caller can no longer see (unshared since)."""
    return [stored.key for stored in await runtime(request).personas.store.with_id(persona_id)]


async def forget_me(request: web.Request) -> web.Response:
    """Forget the caller for every persona (or one named by ``?persona_id=``, even
    one the caller can no longer see: it is the caller's own data). The account,
    its custom personas and its tokens stay (``DELETE /api/me`` removes them)."""
    principal = await current_user(request)
    rt = runtime(request)
    key = await _persona_key(request, principal)
    counts = await rt.forget_user(principal.user_id, key)
    persona_id = _persona_query(request)
    if persona_id is not None:
        for hidden in await _hidden_keys(request, persona_id):
            if hidden != key:
                for name, count in (await rt.forget_user(principal.user_id, hidden)).items():
                    counts[name] = counts.get(name, 0) + count
    return _forgot(counts)


async def export_me(request: web.Request) -> web.Response:
    principal = await current_user(request)
    persona_id = _persona_query(request)
    rt = runtime(request)
    data = await rt.export_user_data(principal.user_id, await _persona_key(request, principal))
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
    Endpoint("GET", "/api/personas/{persona_id}/memory/{item_id}/history", memory_history,
             "A memory item's history: updates, merges, retirement", "memory",
             response=MemoryHistory, path_params=ITEM, errors=(404,)),
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
