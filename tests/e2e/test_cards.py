"""Cards in the browser: the stored greeting and its alternates, and a lorebook
attached in the persona editor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.card_fixtures import world_info_file
from tests.e2e.conftest import api, create_persona, sign_up
from tests.e2e.test_chat import chat_with

pytestmark = pytest.mark.e2e


def test_the_greeting_can_be_swapped_until_the_first_reply(page: Any, username: str) -> None:
    sign_up(page, username)
    persona = chat_with(
        page,
        "Harbour Master",
        greeting="Welcome to the harbour, {{user}}.",
        alternate_greetings=["Storm's coming, {{user}}. Inside, quick."],
    )
    greeting = page.locator(".msg.assistant").first
    expect(greeting.locator(".text")).to_have_text(f"Welcome to the harbour, {username}.")
    greeting.get_by_role("button", name="Another greeting").click()
    expect(greeting.locator(".text")).to_have_text(f"Storm's coming, {username}. Inside, quick.")
    stored = api(page, "GET", f"/api/personas/{persona['id']}/conversations/default/messages")
    assert [m["content"] for m in stored["messages"]] == [
        f"Storm's coming, {username}. Inside, quick."
    ]
    page.get_by_label("Message").fill("Thanks!")
    page.get_by_label("Message").press("Enter")
    expect(page.locator(".msg.assistant .text").last).to_contain_text("You said: Thanks!")
    expect(page.get_by_role("button", name="Another greeting")).to_have_count(0)


def test_a_lorebook_is_attached_in_the_persona_editor(
    page: Any, username: str, tmp_path: Path
) -> None:
    sign_up(page, username)
    persona = create_persona(page, "Chronicler", curiosity="off")
    book = tmp_path / "eldoria.json"
    book.write_text(json.dumps(world_info_file()))
    page.goto("/#/settings/personas")
    page.get_by_role("button", name="Edit Chronicler").first.click()
    dialog = page.get_by_role("dialog", name="Edit Chronicler")
    dialog.get_by_label("Attach a lorebook").set_input_files(book)
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog).to_be_hidden()
    assert api(page, "GET", f"/api/personas/{persona['id']}")["lorebook_entries"] == 4
    page.get_by_role("button", name="Edit Chronicler").first.click()
    dialog = page.get_by_role("dialog", name="Edit Chronicler")
    expect(dialog).to_contain_text("a lorebook of 4 entries")
