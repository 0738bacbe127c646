"""Settings > Personas: create with an avatar, delete (saying what is lost),
character card import and export, voice preview."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import api, create_persona, png_file, sign_up

pytestmark = pytest.mark.e2e


def open_settings(page: Any) -> None:
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("heading", name="Current persona").wait_for()


def wait_for_memory(page: Any, persona_id: str, count: int = 1) -> list[dict[str, Any]]:
    """Background learning is asynchronous: wait until it stored ``count`` items."""
    deadline = time.monotonic() + 10
    while True:
        items: list[dict[str, Any]] = api(page, "GET", f"/api/personas/{persona_id}/memory")[
            "items"
        ]
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


def test_custom_persona_is_created_with_an_avatar(page: Any, username: str, tmp_path: Path) -> None:
    sign_up(page, username)
    open_settings(page)
    page.get_by_role("button", name="+ New persona").click()
    dialog = page.get_by_role("dialog", name="New persona")

    dialog.get_by_label("Name").fill("Harbour Cat")
    dialog.get_by_label("Id (optional)").fill(f"harbour-cat-{username}")
    dialog.get_by_label("Description").fill("{{char}} is a grey cat who lives by the harbour.")
    dialog.get_by_label("Personality").fill("Curious, aloof, fond of fish.")
    dialog.get_by_label("Greeting").fill("Mrrp. Hello, {{user}}.")
    dialog.get_by_label("Avatar image").set_input_files(png_file(tmp_path / "cat.png"))
    preview = dialog.get_by_role("img", name="Avatar preview")
    expect(preview).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    dialog.get_by_label("Curiosity", exact=True).select_option("off")
    dialog.get_by_label("Memory sharing group").fill("harbour")
    dialog.get_by_role("button", name="Create persona").click()
    expect(dialog).to_be_hidden()

    card = page.get_by_role("region", name="My personas").locator("article", has_text="Harbour Cat")
    expect(card).to_contain_text("Harbour Cat is a grey cat who lives by the harbour.")
    picture = card.locator("img.avatar")
    expect(picture).to_have_attribute("src", f"/api/personas/harbour-cat-{username}/avatar")
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=picture.element_handle()
    )
    stored = api(page, "GET", f"/api/personas/harbour-cat-{username}")
    assert stored["personality"] == "Curious, aloof, fond of fish."
    assert stored["greeting"] == "Mrrp. Hello, {{user}}."
    assert (stored["curiosity"], stored["sharing_group"]) == ("off", "harbour")


def test_deleting_a_persona_says_what_will_be_lost(page: Any, username: str) -> None:
    sign_up(page, username)
    persona = create_persona(page, "Short Lived", curiosity="off")
    api(page, "POST", f"/api/personas/{persona['id']}/chat", {"message": "My cat is called Miso."})
    assert wait_for_memory(page, persona["id"])
    open_settings(page)

    page.get_by_role("button", name="Delete Short Lived").click()
    confirm = page.get_by_role("dialog", name="Delete Short Lived?")
    expect(confirm).to_contain_text("1 conversation you had with it")
    expect(confirm).to_contain_text("1 thing it learned about you")
    confirm.get_by_role("button", name="Delete persona").click()

    expect(page.get_by_role("region", name="My personas")).to_contain_text(
        "You have not made a persona yet"
    )
    assert page.request.get(f"/api/personas/{persona['id']}").status == 404
    export = page.request.get("/api/me/export").text()
    assert "Miso" not in export


def test_character_cards_export_as_png_and_json_and_import(
    page: Any, username: str, tmp_path: Path
) -> None:
    sign_up(page, username)
    create_persona(page, "Card Sharp", description="A dealer of cards.", curiosity="off")
    open_settings(page)
    card = page.get_by_role("region", name="My personas").locator("article", has_text="Card Sharp")

    card.get_by_label("Export Card Sharp").click()
    with page.expect_download() as png:
        card.get_by_role("link", name="Card as PNG").click()
    assert Path(png.value.path()).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with page.expect_download() as exported:
        card.get_by_role("link", name="Card as JSON").click()
    data = json.loads(Path(exported.value.path()).read_text())
    assert data["data"]["name"] == "Card Sharp"

    upload = tmp_path / "lighthouse.json"
    lighthouse = {
        "name": "Old Lighthouse",
        "description": "{{char}} has stood on the cliff for a century.",
        "first_mes": "The light turns. Welcome, {{user}}.",
    }
    card_v2 = {"spec": "chara_card_v2", "spec_version": "2.0", "data": lighthouse}
    upload.write_text(json.dumps(card_v2))
    page.get_by_label("Import card (PNG/JSON/CHARX)").set_input_files(upload)
    mine = page.get_by_role("region", name="My personas")
    expect(mine.locator("article", has_text="Old Lighthouse")).to_contain_text(
        "Old Lighthouse has stood on the cliff for a century."
    )
    expect(page.get_by_role("status")).to_contain_text("Imported Old Lighthouse as")


def test_voice_presets_can_be_previewed_and_chosen(page: Any, username: str) -> None:
    sign_up(page, username)
    persona = create_persona(page, "Singer", curiosity="off")
    voices = api(page, "GET", "/api/voices")["voices"]
    open_settings(page)
    page.get_by_role("button", name="Edit Singer").first.click()
    dialog = page.get_by_role("dialog", name="Edit Singer")

    dialog.get_by_label("Preset voice").select_option(voices[0]["id"])
    with page.expect_response(lambda r: "/preview" in r.url) as preview:
        dialog.get_by_role("button", name="▶ Preview voice").click()
    assert preview.value.status == 200
    expect(dialog.get_by_role("alert")).to_be_hidden()
    expect(dialog).to_contain_text("No custom voice sample.")
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog).to_be_hidden()
    assert api(page, "GET", f"/api/personas/{persona['id']}")["voice"] == voices[0]["id"]
