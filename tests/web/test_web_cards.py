"""Cards and lorebooks over HTTP: imports that never overwrite silently, .charx,
and a persona's lorebook attached, exported and detached."""

from __future__ import annotations

import io
import json
import zipfile

from conftest import Caller, png_bytes

from personae.testing.fake_ollama import FakeOllama
from tests.card_fixtures import v2_card, v3_card, world_info_file
from tests.conftest import reply_prompts


async def test_importing_a_card_twice_gives_a_new_id_and_says_so(bob: Caller) -> None:
    body = json.dumps(v2_card()).encode()
    first = await bob.post("/api/personas/import", data=body)
    second = await bob.post("/api/personas/import", data=body)
    assert first.status == 201 and first.data["id"] == "captain-mara-voss"
    assert first.data["notes"] == []
    assert second.status == 201 and second.data["id"] == "captain-mara-voss-2"
    assert "was taken" in second.data["notes"][0]


async def test_replace_true_replaces_the_callers_own_persona(bob: Caller) -> None:
    card = v2_card()
    await bob.post("/api/personas/import", data=json.dumps(card).encode())
    card["data"]["scenario"] = "Docked at Halden."
    again = await bob.post("/api/personas/import?replace=true", data=json.dumps(card).encode())
    assert again.status == 201 and again.data["id"] == "captain-mara-voss"
    assert (await bob.get("/api/personas/captain-mara-voss")).data["scenario"] == (
        "Docked at Halden."
    )


async def test_a_card_named_like_a_built_in_gets_its_own_id(bob: Caller) -> None:
    imported = await bob.post(
        "/api/personas/import", data=json.dumps({"name": "Sage", "description": "x"}).encode()
    )
    assert imported.status == 201 and imported.data["id"] == "sage-2"
    assert (await bob.get("/api/personas/sage")).data["system"] is True


async def test_a_charx_card_imports_with_its_icon_and_exports_back(bob: Caller) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("card.json", json.dumps(v3_card()))
        zipped.writestr("assets/icon/images/main.png", png_bytes(color="teal"))
    imported = await bob.post("/api/personas/import", data=archive.getvalue())
    assert imported.status == 201, imported.data
    assert imported.data["avatar_url"] == "/api/personas/captain-mara-voss/avatar"
    exported = await bob.get("/api/personas/captain-mara-voss/card?format=charx")
    assert exported.status == 200 and exported.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(exported.body)) as zipped:
        document = json.loads(zipped.read("card.json"))
        assert "assets/icon/images/main.png" in zipped.namelist()
    assert document["name"] == document["data"]["name"] == "Captain Mara Voss"
    assert len(document["data"]["character_book"]["entries"]) == 14


async def test_a_json_export_carries_the_v1_mirror(bob: Caller) -> None:
    await bob.post("/api/personas/import", data=json.dumps(v2_card()).encode())
    exported = json.loads((await bob.get("/api/personas/captain-mara-voss/card")).body)
    assert exported["description"] == "{{char}} commands the Kestrel."
    assert exported["first_mes"] == exported["data"]["first_mes"]


async def test_a_world_info_file_is_refused_as_a_card_and_attached_as_a_lorebook(
    bob: Caller,
) -> None:
    body = json.dumps(world_info_file()).encode()
    as_card = await bob.post("/api/personas/import", data=body)
    assert as_card.status == 422 and "lorebook" in as_card.data["detail"]
    await bob.post("/api/personas", json={"name": "Bard"})
    attached = await bob.call("PUT", "/api/personas/bard/lorebook", data=body)
    assert attached.status == 200, attached.data
    exported = await bob.get("/api/personas/bard/lorebook")
    entries = json.loads(exported.body)["entries"]
    assert entries["1"]["key"] == ["dragon", "wyrm"] and entries["3"]["role"] == 1
    book = await bob.get("/api/personas/bard/lorebook?format=character_book")
    assert len(json.loads(book.body)["entries"]) == 4
    assert (await bob.call("DELETE", "/api/personas/bard/lorebook")).status == 204
    assert (await bob.get("/api/personas/bard/lorebook")).status == 404


async def test_merge_adds_to_the_persona_s_own_lorebook(bob: Caller) -> None:
    await bob.post("/api/personas/import", data=json.dumps(v2_card()).encode())
    merged = await bob.call(
        "PUT",
        "/api/personas/captain-mara-voss/lorebook?merge=true",
        data=json.dumps(world_info_file()).encode(),
    )
    assert merged.status == 200
    book = await bob.get("/api/personas/captain-mara-voss/lorebook?format=character_book")
    entries = json.loads(book.body)["entries"]
    assert len(entries) == 18
    assert len({entry["id"] for entry in entries}) == 18


async def test_only_the_owner_changes_a_lorebook(alice: Caller, bob: Caller) -> None:
    body = json.dumps(world_info_file()).encode()
    system = await bob.call("PUT", "/api/personas/sage/lorebook", data=body)
    await alice.post("/api/personas", json={"name": "Alices"})
    other = await bob.call("PUT", "/api/personas/alices/lorebook", data=body)
    junk = await bob.call("PUT", "/api/personas/sage/lorebook", data=b"not json")
    assert system.status == 403 and other.status == 404 and junk.status == 403


async def test_a_conversation_starts_with_the_stored_greeting(
    bob: Caller, fake_ollama: FakeOllama
) -> None:
    await bob.post("/api/personas/import", data=json.dumps(v2_card()).encode())
    url = "/api/personas/captain-mara-voss/conversations/bridge"
    started = await bob.post(f"{url}/greeting", json={})
    assert started.status == 200 and started.data["greeting"] == 0
    assert started.data["greetings"] == 3
    assert started.data["message"]["content"].endswith("You're late, bob.")
    swapped = await bob.post(f"{url}/greeting", json={"greeting": 2, "replace": True})
    assert swapped.data["message"]["content"].startswith("*Captain Mara Voss hands bob a mug.*")
    fake_ollama.reply_with("Sit.")
    await bob.post(
        "/api/personas/captain-mara-voss/chat", json={"message": "Hi", "conversation": "bridge"}
    )
    sent = [m for m in reply_prompts(fake_ollama)[-1].json["messages"] if m["role"] != "system"]
    assert sent[0]["role"] == "assistant" and "hands bob a mug" in sent[0]["content"]
    page = await bob.get(f"{url}/messages")
    assert [m["role"] for m in page.data["messages"]] == ["assistant", "user", "assistant"]
    late = await bob.post(f"{url}/greeting", json={"greeting": 1, "replace": True})
    assert late.status == 409


async def test_chat_can_open_with_a_chosen_greeting(bob: Caller, fake_ollama: FakeOllama) -> None:
    await bob.post("/api/personas/import", data=json.dumps(v2_card()).encode())
    fake_ollama.reply_with("Move!")
    answer = await bob.post(
        "/api/personas/captain-mara-voss/chat",
        json={"message": "What's happening?", "conversation": "alarm", "greeting": 1},
    )
    assert answer.status == 200
    sent = [m for m in reply_prompts(fake_ollama)[-1].json["messages"] if m["role"] != "system"]
    assert "alarm blares" in sent[0]["content"]
    missing = await bob.post(
        "/api/personas/captain-mara-voss/chat",
        json={"message": "x", "conversation": "other", "greeting": 7},
    )
    assert missing.status == 422 and "no greeting 7" in missing.data["detail"]


async def test_a_persona_without_a_greeting_starts_empty(bob: Caller) -> None:
    await bob.post("/api/personas", json={"name": "Quiet"})
    started = await bob.post("/api/personas/quiet/conversations/default/greeting", json={})
    assert started.status == 204


async def test_the_greeting_command_works_over_http(bob: Caller) -> None:
    await bob.post("/api/personas/import", data=json.dumps(v2_card()).encode())
    ran = await bob.post(
        "/api/personas/captain-mara-voss/commands/greeting",
        json={"args": {"number": "1"}, "conversation": "cmd"},
    )
    assert ran.status == 200, ran.data
    page = await bob.get("/api/personas/captain-mara-voss/conversations/cmd/messages")
    assert page.data["messages"][0]["content"] == "*The alarm blares.* bob, get to the bridge!"


async def test_the_persona_says_how_many_lorebook_entries_it_has(bob: Caller) -> None:
    await bob.post("/api/personas/import", data=json.dumps(v2_card()).encode())
    mara = await bob.get("/api/personas/captain-mara-voss")
    assert mara.data["lorebook_entries"] == 14
    assert (await bob.get("/api/personas/sage")).data["lorebook_entries"] == 0
