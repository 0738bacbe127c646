"""Personas over HTTP: system and custom personas, editing rules, avatars and
Character Card import/export."""

from __future__ import annotations

import io
import json

import pytest
from conftest import Caller, MakeCaller, png_bytes
from PIL import Image

from personae.core.cards import PersonaCard, card_to_dict, read_png_card, write_png_card

FULL = {
    "name": "Captain Nemo",
    "description": "A reclusive submarine captain.",
    "personality": "brooding, brilliant",
    "scenario": "Aboard the Nautilus.",
    "greeting": "Welcome aboard, {{user}}.",
    "example_messages": "<START>\n{{user}}: Where are we?\n{{char}}: Twenty leagues down.",
    "tags": ["classic", "sea"],
    "voice": "espeak:en-gb",
    "curiosity": "high",
    "sharing_group": "sailors",
}


@pytest.mark.both_databases
async def test_system_personas_are_listed_for_every_user(alice: Caller, bob: Caller) -> None:
    listed = await bob.get("/api/personas")

    ids = {p["id"] for p in listed.data["personas"] if p["system"]}
    assert {"sage", "pip", "dagoth-ur", "scav"} <= ids
    assert all(not p["editable"] for p in listed.data["personas"])


@pytest.mark.both_databases
async def test_a_custom_persona_keeps_every_field_and_is_private(
    alice: Caller, bob: Caller
) -> None:
    made = await bob.post("/api/personas", json=FULL)

    assert made.status == 201
    persona = made.data
    assert persona["id"] == "captain-nemo"
    assert {k: persona[k] for k in FULL} == FULL
    assert (persona["mine"], persona["system"], persona["shared"]) == (True, False, False)
    assert (await alice.get("/api/personas/captain-nemo")).status == 404
    listed = await alice.get("/api/personas")
    assert "captain-nemo" not in {p["id"] for p in listed.data["personas"]}


async def test_editing_a_custom_persona_changes_only_the_given_fields(bob: Caller) -> None:
    await bob.post("/api/personas", json=FULL)

    edited = await bob.call(
        "PATCH", "/api/personas/captain-nemo", json={"scenario": "On land.", "curiosity": "off"}
    )

    assert edited.status == 200
    assert edited.data["scenario"] == "On land." and edited.data["curiosity"] == "off"
    assert edited.data["personality"] == FULL["personality"]
    assert edited.data["voice"] == FULL["voice"]


async def test_deleting_a_custom_persona(bob: Caller) -> None:
    await bob.post("/api/personas", json=FULL)

    deleted = await bob.call("DELETE", "/api/personas/captain-nemo")

    assert deleted.status == 204
    assert (await bob.get("/api/personas/captain-nemo")).status == 404


async def test_system_personas_are_read_only_except_for_admins(alice: Caller, bob: Caller) -> None:
    refused = await bob.call("PATCH", "/api/personas/sage", json={"scenario": "hacked"})
    refused_delete = await bob.call("DELETE", "/api/personas/sage")
    edited = await alice.call("PATCH", "/api/personas/sage", json={"scenario": "A quiet library."})
    builtin_delete = await alice.call("DELETE", "/api/personas/pip")

    assert (refused.status, refused_delete.status) == (403, 403)
    assert refused.data["title"] == "Read-only persona"
    assert edited.status == 200
    assert (await bob.get("/api/personas/sage")).data["scenario"] == "A quiet library."
    assert builtin_delete.status == 409


async def test_a_user_cannot_take_a_system_id_but_may_reuse_another_users_private_one(
    alice: Caller, bob: Caller, make_caller: MakeCaller
) -> None:
    """System ids are public, so taking one is refused; another user's private id
    is not (refusing it would tell who has which persona): ids are per owner."""
    carol = await make_caller("carol")
    await bob.post("/api/personas", json={"name": "Mine", "id": "taken"})

    system = await carol.post("/api/personas", json={"name": "Sage", "id": "sage"})
    other = await carol.post("/api/personas", json={"name": "Mine too", "id": "taken"})
    fake_sage = json.dumps(card_to_dict(PersonaCard(name="Fake Sage", id="sage"))).encode()
    replacing = await carol.post("/api/personas/import?replace=true", data=fake_sage)
    taking = await carol.post(
        "/api/personas/import?replace=true",
        data=json.dumps(card_to_dict(PersonaCard(name="Mine too", id="taken"))).encode(),
    )

    # Carol's "taken" is her own (Bob's private one is no obstacle); replacing it
    # is hers to do; a system id is never hers to replace.
    assert (system.status, other.status, replacing.status, taking.status) == (409, 201, 409, 201)
    assert (await bob.get("/api/personas/taken")).data["name"] == "Mine"
    assert (await carol.get("/api/personas/taken")).data["name"] == "Mine too"
    assert (await carol.get("/api/personas/sage")).data["name"] == "Sage"


async def test_invalid_persona_bodies_are_422(bob: Caller) -> None:
    no_name = await bob.post("/api/personas", json={"description": "x"})
    bad_id = await bob.post("/api/personas", json={"name": "X", "id": "Bad Id"})
    unknown = await bob.post("/api/personas", json={"name": "X", "colour": "red"})
    bad_curiosity = await bob.post("/api/personas", json={"name": "X", "curiosity": "max"})

    for response in (no_name, bad_id, unknown, bad_curiosity):
        assert response.status == 422, response.data
        assert response.content_type == "application/problem+json"


async def test_avatars_are_reencoded_and_served_to_who_can_see_the_persona(
    alice: Caller, bob: Caller
) -> None:
    await bob.post("/api/personas", json=FULL)
    upload = png_bytes((2000, 1000), Comment="secret metadata")

    stored = await bob.call("PUT", "/api/personas/captain-nemo/avatar", data=upload)
    served = await bob.get("/api/personas/captain-nemo/avatar")

    assert stored.status == 200 and stored.data["avatar_url"] == "/api/personas/captain-nemo/avatar"
    assert served.status == 200 and served.content_type == "image/png"
    image = Image.open(io.BytesIO(served.body))
    assert max(image.size) <= 1024
    assert b"secret metadata" not in served.body
    assert (await alice.get("/api/personas/captain-nemo/avatar")).status == 404


async def test_avatar_uploads_are_checked_by_content_not_by_name(bob: Caller) -> None:
    import aiohttp

    await bob.post("/api/personas", json=FULL)
    form = aiohttp.FormData()
    form.add_field("file", b"#!/bin/sh\necho hi\n", filename="face.png", content_type="image/png")
    fake = await bob.call("PUT", "/api/personas/captain-nemo/avatar", data=form)
    broken = await bob.call(
        "PUT", "/api/personas/captain-nemo/avatar", data=png_bytes()[:60] + b"\x00" * 40
    )
    real = aiohttp.FormData()
    real.add_field("file", png_bytes(), filename="notes.txt", content_type="text/plain")
    accepted = await bob.call("PUT", "/api/personas/captain-nemo/avatar", data=real)

    assert fake.status == 415 and fake.data["title"] == "Unsupported image type"
    assert broken.status == 422
    assert accepted.status == 200


@pytest.mark.parametrize("web_overrides", [{"max_upload_bytes": 4096}])
async def test_uploads_over_the_limit_are_413(bob: Caller) -> None:
    await bob.post("/api/personas", json=FULL)

    big = await bob.call("PUT", "/api/personas/captain-nemo/avatar", data=b"\x89PNG" + b"0" * 9000)

    assert big.status == 413 and big.content_type == "application/problem+json"


async def test_a_json_card_round_trips_through_import_and_export(bob: Caller) -> None:
    card = PersonaCard(
        name="Ada",
        description="Mathematician.",
        first_mes="Hello.",
        tags=["science"],
        extensions={"depth_prompt": {"prompt": "x", "depth": 4}, "personae": {"curiosity": "high"}},
    )

    imported = await bob.post("/api/personas/import", data=json.dumps(card_to_dict(card)).encode())
    exported = await bob.get("/api/personas/ada/card")

    assert imported.status == 201 and imported.data["curiosity"] == "high"
    document = json.loads(exported.body)
    assert document["data"]["description"] == "Mathematician."
    assert document["data"]["extensions"]["depth_prompt"] == {"prompt": "x", "depth": 4}
    assert "attachment" in exported.headers["Content-Disposition"]


async def test_a_png_card_imports_with_its_picture_and_exports_as_png(
    alice: Caller, bob: Caller
) -> None:
    card = PersonaCard(
        name="Grace",
        scenario="A lab.",
        extensions={"personae": {"avatar": "0" * 32 + ".png", "model": "huge-model"}},
    )
    png = write_png_card(card, png_bytes(color="purple"))

    imported = await bob.post("/api/personas/import?id=grace-2", data=png)
    exported = await bob.get("/api/personas/grace-2/card?format=png")
    avatar = await bob.get("/api/personas/grace-2/avatar")

    assert imported.status == 201 and imported.data["id"] == "grace-2"
    assert avatar.status == 200
    assert read_png_card(exported.body).scenario == "A lab."
    own = read_png_card(exported.body).settings
    assert own.avatar is None and own.model is None  # server-side fields are not taken
    assert imported.data["avatar_url"] == "/api/personas/grace-2/avatar"


async def test_importing_something_that_is_not_a_card_is_refused(bob: Caller) -> None:
    text = await bob.post("/api/personas/import", data=b"hello there")
    plain_png = await bob.post("/api/personas/import", data=png_bytes())
    bad_json = await bob.post("/api/personas/import", data=b'{"spec": "chara_card_v2"}')

    assert text.status == 415
    assert plain_png.status == 422 and "no character card" in plain_png.data["detail"]
    assert bad_json.status == 422


async def test_only_admins_import_system_personas(alice: Caller, bob: Caller) -> None:
    body = json.dumps(card_to_dict(PersonaCard(name="Oracle"))).encode()

    refused = await bob.post("/api/personas/import?system=true", data=body)
    done = await alice.post("/api/personas/import?system=true", data=body)

    assert refused.status == 403
    assert done.status == 201 and done.data["system"] is True
    assert (await bob.get("/api/personas/oracle")).status == 200
