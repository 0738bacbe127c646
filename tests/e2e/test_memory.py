"""Memory: learned facts shown, edited and deleted; what two personas know,
side by side; forget me."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import api, create_persona, sign_up

pytestmark = pytest.mark.e2e

FACT = "Has a cat called Miso"


def tell_about_the_cat(page: Any, persona: dict[str, Any]) -> None:
    """Say it in the chat UI and wait for the reply."""
    api(page, "PUT", "/api/me/current-persona", {"persona_id": persona["id"]})
    page.goto("/#/memory")
    page.get_by_role("link", name="Chat", exact=True).click()
    expect(page.get_by_label("Talking to")).to_have_value(persona["id"])
    page.get_by_label("Message").fill("My cat is called Miso.")
    page.get_by_label("Message").press("Enter")
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".text")).to_have_text(
        "Nice to hear from you. You said: My cat is called Miso."
    )
    expect(reply).not_to_have_class("streaming")


def open_memory_until(page: Any, text: str) -> Any:
    """Open the memory page and press Refresh until ``text`` shows (learning
    runs in the background after the reply)."""
    page.get_by_role("link", name="Memory").click()
    known = page.get_by_role("region", name="What a persona knows")
    item = known.locator(".memory-item", has_text=text)
    deadline = time.monotonic() + 10
    while not item.count() and time.monotonic() < deadline:
        time.sleep(0.3)
        known.get_by_role("button", name="Refresh").click()
    expect(item).to_be_visible()
    return known


def test_learned_fact_is_shown_and_can_be_edited_and_deleted(page: Any, username: str) -> None:
    sign_up(page, username)
    persona = create_persona(page, "Cat Lover", curiosity="off")
    tell_about_the_cat(page, persona)
    known = open_memory_until(page, FACT)
    expect(known.get_by_label("Persona")).to_have_value(persona["id"])

    known.get_by_role("button", name=f"Edit “{FACT}”").click()
    known.get_by_label("Memory").fill("Has a black cat called Miso")
    known.get_by_role("button", name="Save").click()
    expect(known.locator(".memory-text")).to_have_text(["Has a black cat called Miso"])
    memory = api(page, "GET", f"/api/personas/{persona['id']}/memory")["items"]
    assert [item["text"] for item in memory] == ["Has a black cat called Miso"]

    known.get_by_role("button", name="History of “Has a black cat called Miso”").click()
    expect(known.locator(".memory-history li")).to_contain_text([f"Changed from: “{FACT}”"])

    known.get_by_role("button", name="Delete “Has a black cat called Miso”").click()
    page.get_by_role("dialog", name="Delete this memory?").get_by_role(
        "button", name="Delete"
    ).click()
    expect(known).to_contain_text("Cat Lover has not learned anything about you yet.")
    assert api(page, "GET", f"/api/personas/{persona['id']}/memory")["items"] == []


def test_a_fact_told_twice_is_one_item_whose_history_shows_the_merge(
    page: Any, username: str
) -> None:
    sign_up(page, username)
    persona = create_persona(page, "Cat Lover", curiosity="off")
    tell_about_the_cat(page, persona)
    open_memory_until(page, FACT)
    page.get_by_role("link", name="Chat", exact=True).click()
    page.get_by_label("Message").fill("Miso is my cat, as I said.")
    page.get_by_label("Message").press("Enter")
    expect(page.locator(".msg.assistant").last).not_to_have_class("streaming")
    [item] = api(page, "GET", f"/api/personas/{persona['id']}/memory")["items"]
    history = f"/api/personas/{persona['id']}/memory/{item['id']}/history"
    deadline = time.monotonic() + 10
    while not api(page, "GET", history)["revisions"] and time.monotonic() < deadline:
        time.sleep(0.3)
    known = open_memory_until(page, FACT)
    expect(known.locator(".memory-item")).to_have_count(1)
    known.get_by_role("button", name=f"History of “{FACT}”").click()
    expect(known.locator(".memory-history li")).to_contain_text(
        ["Merged in: “The user has a cat called miso.” (from message"]
    )


def test_fact_learned_by_one_persona_is_unknown_to_another(page: Any, username: str) -> None:
    sign_up(page, username)
    knowing = create_persona(page, "Knowing One", curiosity="off")
    other = create_persona(page, "Other One", curiosity="off")
    tell_about_the_cat(page, knowing)
    open_memory_until(page, FACT)

    compare = page.get_by_role("region", name="Compare two personas")
    compare.get_by_label("Left").select_option(knowing["id"])
    compare.get_by_label("Right").select_option(other["id"])
    expect(compare.get_by_role("region", name="What Knowing One knows")).to_contain_text(FACT)
    expect(compare.get_by_role("region", name="What Other One knows")).to_contain_text(
        "Knows nothing about you yet."
    )

    # Switch to the other persona in the chat; its memory page is empty.
    page.get_by_role("link", name="Chat", exact=True).click()
    page.get_by_label("Talking to").select_option(other["id"])
    expect(page.get_by_role("log", name="Conversation with Other One")).to_be_attached()
    page.get_by_role("link", name="Memory").click()
    known = page.get_by_role("region", name="What a persona knows")
    expect(known.get_by_label("Persona")).to_have_value(other["id"])
    expect(known).to_contain_text("Other One has not learned anything about you yet.")


def test_forget_me_for_one_persona_after_confirmation(page: Any, username: str) -> None:
    sign_up(page, username)
    persona = create_persona(page, "Forgetful", curiosity="off")
    tell_about_the_cat(page, persona)
    open_memory_until(page, FACT)

    data = page.get_by_role("region", name="Your data")
    data.get_by_label("Persona").select_option(persona["id"])
    data.get_by_role("button", name="Forget me for this persona").click()
    confirm = page.get_by_role("dialog", name="Make Forgetful forget you?")
    expect(confirm).to_contain_text("your conversations, what it learned about you")
    confirm.get_by_role("button", name="Forget me for Forgetful").click()

    expect(page.get_by_role("status")).to_contain_text("Forgotten:")
    expect(page.get_by_role("region", name="What a persona knows")).to_contain_text(
        "Forgetful has not learned anything about you yet."
    )
    base = f"/api/personas/{persona['id']}"
    assert api(page, "GET", f"{base}/memory")["items"] == []
    assert api(page, "GET", f"{base}/conversations/default/messages")["messages"] == []
