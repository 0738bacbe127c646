"""Signing up, logging in (from the keyboard) and linking a Discord account."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from personae.adapters.discord.linking import LinkCodes
from tests.e2e.conftest import PASSWORD, sign_up

pytestmark = pytest.mark.e2e


def test_sign_up_opens_the_chat_with_the_personas_greeting(page: Any, username: str) -> None:
    sign_up(page, username)

    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    greeting = page.locator(".msg.assistant").first
    expect(greeting).to_contain_text("greeting")
    expect(greeting).not_to_contain_text("{{")  # placeholders filled in
    assert page.request.get("/api/me").json()["username"] == username


def test_login_works_from_the_keyboard_and_explains_a_wrong_password(
    page: Any, username: str
) -> None:
    sign_up(page, username)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/#/login")
    expect(page.get_by_label("User name")).to_be_focused()

    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text(
        "Wrong user name or password. Check both and try again."
    )

    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/#/chat")
    expect(page.get_by_label("Message")).to_be_focused()


def test_discord_account_is_linked_with_the_code_from_link(
    page: Any, username: str, live_server: Any
) -> None:
    code = live_server.run(LinkCodes(live_server.runtime.clock).create("discord", "4242424242"))
    sign_up(page, username)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Account & linking").click()

    box = page.get_by_role("region", name="Link Discord")
    box.get_by_label("One-time code").fill("WRONG-CODE")
    box.get_by_role("button", name="Link account").click()
    expect(box.get_by_role("alert")).to_contain_text("Link code not accepted")

    box.get_by_label("One-time code").fill(code.lower())  # typed loosely: the UI upper-cases it
    box.get_by_role("button", name="Link account").click()
    expect(box.get_by_role("status")).to_contain_text("Discord account (4242424242)")
    expect(box.get_by_role("alert")).to_be_hidden()
