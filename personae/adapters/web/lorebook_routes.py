"""A persona's lorebook (World Info): attach one from a SillyTavern World Info
file or a character book, export it in either format, detach it."""

from __future__ import annotations

from aiohttp import web

from personae.adapters.web.auth import current_user
from personae.adapters.web.helpers import ok, runtime, settings, visible_persona
from personae.adapters.web.personas_routes import _check_can_edit, _save, persona_out
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import PERSONA_ID, Endpoint, Param
from personae.adapters.web.schemas import PersonaOut
from personae.adapters.web.uploads import read_upload
from personae.core.errors import CardError
from personae.core.lorebook_files import (
    attach_lorebook,
    detach_lorebook,
    dump_lorebook,
    read_lorebook,
)

BOOK = {
    "application/json": {
        "schema": {
            "type": "object",
            "description": "A SillyTavern World Info file (`entries` keyed by uid), a "
            "character book (`entries` a list) or a character card with one.",
        }
    }
}


async def put_lorebook(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    _check_can_edit(entry, principal)
    merge = request.query.get("merge", "false").lower() in {"true", "1", "yes"}
    data = await read_upload(request, settings(request).web.max_upload_bytes)
    try:
        book = read_lorebook(data, name=entry.card.name)
    except CardError as error:
        raise Problem(422, "Not a lorebook", str(error)) from None
    await _save(
        request, attach_lorebook(entry.card, book, merge=merge), entry.owner_id, entry.shared
    )
    entry = await runtime(request).personas.entry(entry.id, viewer=principal.user_id)
    return ok(persona_out(entry, principal))


async def get_lorebook(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    fmt = request.query.get("format", "world_info")
    if fmt not in ("world_info", "character_book"):
        raise Problem(
            422, "Invalid query parameter", "format must be world_info or character_book."
        )
    if not entry.card.character_book:
        raise Problem(404, "No lorebook", f"{entry.card.name} has no lorebook.")
    body = dump_lorebook(entry.card, "world_info" if fmt == "world_info" else "character_book")
    return web.Response(
        body=body,
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{entry.id}-lorebook.json"'},
    )


async def delete_lorebook(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    _check_can_edit(entry, principal)
    await _save(request, detach_lorebook(entry.card), entry.owner_id, entry.shared)
    return web.Response(status=204)


PID = {"persona_id": PERSONA_ID}
ENDPOINTS = [
    Endpoint("PUT", "/api/personas/{persona_id}/lorebook", put_lorebook,
             "Attach a lorebook (SillyTavern World Info JSON)", "personas", raw_body=BOOK,
             response=PersonaOut, path_params=PID, errors=(403, 404, 413, 422),
             query=(Param("merge", {"type": "boolean"},
                          "Add the entries to the persona's own lorebook instead of "
                          "replacing it."),)),
    Endpoint("GET", "/api/personas/{persona_id}/lorebook", get_lorebook,
             "Export the persona's lorebook", "personas",
             response={"type": "object", "description": "World Info or character book."},
             path_params=PID, errors=(404,),
             query=(Param("format", {"type": "string",
                                     "enum": ["world_info", "character_book"]}),)),
    Endpoint("DELETE", "/api/personas/{persona_id}/lorebook", delete_lorebook,
             "Detach the persona's lorebook", "personas", status=204, path_params=PID,
             errors=(403, 404)),
]  # fmt: skip
