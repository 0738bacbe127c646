"""Personas: list the ones the caller may use, create, edit and delete custom
ones, avatars, and Character Card import/export (JSON and PNG).

System personas (plugins, config folders, operator imports) are read-only except
for administrators. Custom personas belong to their creator and are visible to
others only when ``shared``; only the owner may change them.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from personae.adapters.web.auth import Principal, current_user
from personae.adapters.web.helpers import ok, runtime, settings, visible_persona
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import PERSONA_ID, Endpoint, Param
from personae.adapters.web.schemas import (
    ImportedPersona,
    PersonaCreate,
    PersonaList,
    PersonaOut,
    PersonaPatch,
)
from personae.adapters.web.uploads import read_json, read_upload, reencode_avatar, sniff
from personae.core.card_prompt import card_book
from personae.core.cards import (
    EXTENSION_KEY,
    PersonaCard,
    card_to_dict,
    check_card_limits,
    dump_card_json,
    parse_card_json,
    read_png_card,
    write_png_card,
)
from personae.core.charx import is_charx, read_charx, write_charx
from personae.core.errors import CardError
from personae.core.personas import PersonaEntry
from personae.core.private_files import write_private

AVATAR_RE = re.compile(r"[0-9a-f]{32}\.png")
UPLOAD = {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "string", "format": "binary"}},
            "required": ["file"],
        }
    },
}
_TEXT = {"description", "personality", "scenario", "system_prompt"}
_RENAMED = {"greeting": "first_mes", "example_messages": "mes_example"}
_SETTINGS = ("voice", "curiosity", "sharing_group")


def avatars_dir(request: web.Request) -> Path:
    return settings(request).data_dir / "avatars"


def _avatar_name(card: PersonaCard) -> str | None:
    name = card.settings.avatar
    return name if name and AVATAR_RE.fullmatch(name) else None


def persona_out(entry: PersonaEntry, principal: Principal) -> PersonaOut:
    card = entry.card
    mine = entry.owner_id is not None and entry.owner_id == principal.user_id
    own = card.settings
    return PersonaOut(
        id=card.id,
        name=card.name,
        description=card.description,
        personality=card.personality,
        scenario=card.scenario,
        greeting=card.first_mes,
        example_messages=card.mes_example,
        system_prompt=card.system_prompt,
        alternate_greetings=list(card.alternate_greetings),
        tags=list(card.tags),
        voice=own.voice,
        curiosity=own.curiosity,
        sharing_group=own.sharing_group,
        shared=entry.shared,
        system=entry.is_system,
        mine=mine,
        editable=mine or (entry.is_system and principal.account.is_admin),
        avatar_url=f"/api/personas/{card.id}/avatar" if _avatar_name(card) else None,
        lorebook_entries=len(card_book(card).entries),
    )


def _check_can_edit(entry: PersonaEntry, principal: Principal) -> None:
    if entry.is_system and not principal.account.is_admin:
        raise Problem(403, "Read-only persona", "Only administrators can change system personas.")
    if not entry.is_system and entry.owner_id != principal.user_id:
        raise Problem(403, "Not your persona", "Only its owner can change this persona.")


def _rebuild(card: PersonaCard, changes: dict[str, Any]) -> PersonaCard:
    """A validated copy of ``card`` with field and setting ``changes``."""
    fields = {_RENAMED.get(k, k): v for k, v in changes.items() if k not in _SETTINGS}
    updated = PersonaCard.model_validate({**card.model_dump(), **fields})
    own = {k: v for k, v in changes.items() if k in _SETTINGS}
    return updated.with_settings(**own) if own else updated


async def _save(
    request: web.Request, card: PersonaCard, owner: int | None, shared: bool
) -> PersonaEntry:
    """Store the persona; 409 only for an id that is public (a system persona's,
    or another shared persona's when this one is shared): another user's private
    ids are never an obstacle, so they cannot be found out this way."""
    try:
        return await runtime(request).personas.save(card, owner_id=owner, shared=shared)
    except CardError as error:
        raise Problem(409, "Persona id taken", f"{error} Choose another id.") from None


async def list_personas(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entries = await runtime(request).personas.list(principal.user_id)
    return ok(PersonaList(personas=[persona_out(e, principal) for e in entries]))


async def create_persona(request: web.Request) -> web.Response:
    principal = await current_user(request)
    body = await read_json(request, PersonaCreate, settings(request).web.max_body_bytes)
    data = body.model_dump(exclude={"shared", "id", "name", *_SETTINGS})
    base = PersonaCard.model_validate(
        {"name": body.name, "creator": principal.account.username}
        | ({"id": body.id} if body.id else {})
    )
    card = _rebuild(base, data | {k: getattr(body, k) for k in _SETTINGS})
    entry = await _save(request, card, principal.user_id, body.shared)
    return ok(persona_out(entry, principal), 201)


async def get_persona(request: web.Request) -> web.Response:
    principal = await current_user(request)
    return ok(persona_out(await visible_persona(request, principal), principal))


async def patch_persona(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    _check_can_edit(entry, principal)
    body = await read_json(request, PersonaPatch, settings(request).web.max_body_bytes)
    changes = body.model_dump(exclude_unset=True, exclude={"shared"})
    card = _rebuild(entry.card, changes)
    shared = entry.shared if body.shared is None else body.shared
    entry = await _save(request, card, entry.owner_id, shared)
    return ok(persona_out(entry, principal))


async def delete_persona(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    _check_can_edit(entry, principal)
    if not await runtime(request).delete_persona(entry):
        raise Problem(409, "Built-in persona", "Personas from plugins or card folders stay.")
    return web.Response(status=204)


# -- avatars ---------------------------------------------------------------------------


async def _store_avatar(request: web.Request, png: bytes) -> str:
    folder = avatars_dir(request)
    name = secrets.token_hex(16) + ".png"

    await asyncio.to_thread(write_private, folder / name, png)
    return name


async def _remove_avatar(request: web.Request, name: str | None) -> None:
    if name:
        await asyncio.to_thread((avatars_dir(request) / name).unlink, missing_ok=True)


async def _read_avatar(request: web.Request, card: PersonaCard) -> bytes | None:
    name = _avatar_name(card)
    if name is None:
        return None
    try:
        return await asyncio.to_thread((avatars_dir(request) / name).read_bytes)
    except OSError:
        return None


async def get_avatar(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    data = await _read_avatar(request, entry.card)
    if data is None:
        raise Problem(404, "No avatar", f"{entry.card.name} has no avatar image.")
    return web.Response(
        body=data, content_type="image/png", headers={"Cache-Control": "private, max-age=300"}
    )


async def put_avatar(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    _check_can_edit(entry, principal)
    config = settings(request).web
    png = await reencode_avatar(
        await read_upload(request, config.max_upload_bytes), config.avatar_max_pixels
    )
    name = await _store_avatar(request, png)
    saved = await _save(
        request, entry.card.with_settings(avatar=name), entry.owner_id, entry.shared
    )
    await _remove_avatar(request, _avatar_name(entry.card))
    return ok(persona_out(saved, principal))


async def delete_avatar(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    _check_can_edit(entry, principal)
    await _save(request, entry.card.with_settings(avatar=None), entry.owner_id, entry.shared)
    await _remove_avatar(request, _avatar_name(entry.card))
    return web.Response(status=204)


# -- character cards -------------------------------------------------------------------


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in {"true", "false", "1", "0", "yes", "no"}:
        raise Problem(422, "Invalid query parameter", f"{name} must be true or false.")
    return value in {"true", "1", "yes"}


def _sanitize(card: PersonaCard, principal: Principal, new_id: str | None) -> PersonaCard:
    """Drop what an upload may not decide: the avatar file (set by the server
    only) and, for non-administrators, the model and its options."""
    own = dict(card.extensions.get(EXTENSION_KEY) or {})
    own.pop("avatar", None)
    if not principal.account.is_admin:
        own.pop("model", None)
        own.pop("options", None)
    update: dict[str, Any] = {"extensions": {**card.extensions, EXTENSION_KEY: own}}
    if new_id:
        update["id"] = new_id
    return PersonaCard.model_validate({**card.model_dump(), **update})


async def import_card(request: web.Request) -> web.Response:
    principal = await current_user(request)
    system, shared = _flag(request, "system"), _flag(request, "shared")
    if system and not principal.account.is_admin:
        raise Problem(403, "Administrators only", "Only administrators import system personas.")
    new_id = request.query.get("id") or None
    if new_id is not None and not re.fullmatch(PERSONA_ID["pattern"], new_id):
        raise Problem(422, "Invalid query parameter", "id must be a persona id (a-z, 0-9, -, _).")
    replace = _flag(request, "replace")
    config = settings(request).web
    data = await read_upload(request, config.max_upload_bytes)
    kind = sniff(data)
    picture: bytes | None = data if kind == "png" else None
    if kind == "png":
        card = await asyncio.to_thread(read_png_card, data)
    elif kind == "json":
        card = parse_card_json(data)
    elif is_charx(data):
        card, picture = await asyncio.to_thread(read_charx, data)
    else:
        raise Problem(
            415, "Unsupported card type", "Upload a character card as JSON, PNG or .charx."
        )
    card = _sanitize(check_card_limits(card), principal, new_id)
    avatar = None
    if picture is not None:
        png = await reencode_avatar(picture, config.avatar_max_pixels)
        avatar = await _store_avatar(request, png)
        card = card.with_settings(avatar=avatar)
    try:
        result = await runtime(request).personas.import_card(
            card, owner_id=None if system else principal.user_id, shared=shared or system,
            replace=replace,
        )  # fmt: skip
    except CardError as error:
        await _remove_avatar(request, avatar)
        raise Problem(409, "Persona id taken", f"{error} Choose another id.") from None
    except BaseException:
        await _remove_avatar(request, avatar)
        raise
    entry = await runtime(request).personas.entry(result.card.id, viewer=principal.user_id)
    notes = list(result.notes)
    if result.renamed:
        notes.insert(0, f"The id {card.id!r} was taken, so it was imported as {result.card.id!r}.")
    out = persona_out(entry, principal)
    return ok(ImportedPersona(**out.model_dump(), notes=notes), 201)


async def export_card(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    kind = request.query.get("format", "json")
    if kind not in {"json", "png", "charx"}:
        raise Problem(422, "Invalid query parameter", "format must be json, png or charx.")
    card = entry.card.with_settings(avatar=None)
    disposition = f'attachment; filename="{card.id}.{kind}"'
    if kind == "json":
        return web.Response(
            body=dump_card_json(card),
            content_type="application/json",
            headers={"Content-Disposition": disposition},
        )
    image = await _read_avatar(request, entry.card)
    if kind == "charx":
        archive = await asyncio.to_thread(write_charx, card, image)
        return web.Response(
            body=archive,
            content_type="application/zip",
            headers={"Content-Disposition": disposition},
        )
    png = await asyncio.to_thread(write_png_card, card, image)
    return web.Response(
        body=png, content_type="image/png", headers={"Content-Disposition": disposition}
    )


CARD = {"type": "object", "description": "A Character Card V2/V3 document."}
PID = {"persona_id": PERSONA_ID}
ENDPOINTS = [
    Endpoint("GET", "/api/personas", list_personas, "Personas the caller may use", "personas",
             response=PersonaList),
    Endpoint("POST", "/api/personas", create_persona, "Create a custom persona", "personas",
             body=PersonaCreate, response=PersonaOut, status=201, errors=(409,)),
    Endpoint("POST", "/api/personas/import", import_card,
             "Import a Character Card (JSON, PNG or .charx)",
             "personas", raw_body=UPLOAD, response=ImportedPersona, status=201,
             errors=(403, 409, 413, 415),
             query=(Param("shared", {"type": "boolean"}, "Visible to every user."),
                    Param("system", {"type": "boolean"}, "Import as a system persona (admins)."),
                    Param("id", PERSONA_ID, "Store under this id instead of the card's."),
                    Param("replace", {"type": "boolean"}, "Replace the persona with this id "
                          "(default: an id in use gets a new one, e.g. `mara-2`)."))),
    Endpoint("GET", "/api/personas/{persona_id}", get_persona, "One persona", "personas",
             response=PersonaOut, path_params=PID, errors=(404,)),
    Endpoint("PATCH", "/api/personas/{persona_id}", patch_persona, "Edit a persona", "personas",
             body=PersonaPatch, response=PersonaOut, path_params=PID, errors=(403, 404, 409)),
    Endpoint("DELETE", "/api/personas/{persona_id}", delete_persona, "Delete a persona",
             "personas", status=204, path_params=PID, errors=(403, 404, 409)),
    Endpoint("GET", "/api/personas/{persona_id}/avatar", get_avatar, "The persona's avatar",
             "personas", response_content="image/png", path_params=PID, errors=(404,)),
    Endpoint("PUT", "/api/personas/{persona_id}/avatar", put_avatar, "Upload an avatar image",
             "personas", raw_body=UPLOAD, response=PersonaOut, path_params=PID,
             errors=(403, 404, 413, 415)),
    Endpoint("DELETE", "/api/personas/{persona_id}/avatar", delete_avatar, "Remove the avatar",
             "personas", status=204, path_params=PID, errors=(403, 404)),
    Endpoint("GET", "/api/personas/{persona_id}/card", export_card,
             "Export as a Character Card", "personas", response=CARD, path_params=PID,
             query=(Param("format", {"type": "string", "enum": ["json", "png", "charx"]}),),
             errors=(404,)),
]  # fmt: skip

__all__ = ["ENDPOINTS", "card_to_dict", "persona_out"]
