"""Every page at desktop (1280x800) and phone (390x844) width: screenshots for
people to look at, and checks that hold on both widths: nothing wider than the
screen, every control labelled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    api,
    create_persona,
    png_file,
    shot,
    sign_up,
    upload_avatar,
)

pytestmark = pytest.mark.e2e

UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, a[href], summary')]
  .filter((el) => el.getClientRects().length || el.matches('input[type=file]'))
  .filter((el) => {
    const named = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || (el.labels && el.labels.length) || (el.textContent || '').trim();
    return !named;
  })
  .map((el) => el.outerHTML.slice(0, 120))"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def check(page: Any, name: str, *, full_page: bool = True) -> None:
    page.wait_for_load_state("networkidle")
    assert page.evaluate(UNLABELLED) == [], f"unlabelled controls on {name}"
    assert page.evaluate(OVERFLOW) <= 0, f"{name} is wider than the screen"
    shot(page, name, full_page=full_page)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_fits_the_screen_and_labels_its_controls(
    browser: Any, live_server: Any, username: str, viewport: dict[str, int], tmp_path: Path
) -> None:
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto("/#/login")
        page.get_by_label("User name").wait_for()
        check(page, "login")

        sign_up(page, username)
        persona = create_persona(
            page,
            "Lantern Keeper",
            description="{{char}} keeps the harbour lantern lit and remembers every ship.",
            greeting="Welcome to the harbour, {{user}}.",
            curiosity="off",
        )
        upload_avatar(page, persona["id"], png_file(tmp_path / "a.png"))
        api(page, "PUT", "/api/me/current-persona", {"persona_id": persona["id"]})
        page.goto("/#/settings/personas")
        page.reload()
        page.get_by_role("heading", name="Current persona").wait_for()
        check(page, "settings-personas")

        mine = page.get_by_role("region", name="My personas")
        mine.get_by_role("button", name="Edit Lantern Keeper").click()
        page.get_by_role("dialog").wait_for()
        check(page, "persona-editor", full_page=False)
        page.get_by_role("group", name="Avatar").scroll_into_view_if_needed()
        shot(page, "persona-editor-avatar-voice", full_page=False)
        page.get_by_role("button", name="Cancel").click()

        page.goto("/#/chat")
        page.get_by_label("Message").fill("My cat is called Miso.")
        page.get_by_label("Message").press("Enter")
        page.locator(".msg.assistant[data-id]:not([data-id=''])").last.wait_for()
        check(page, "chat")

        page.goto("/#/memory")
        page.get_by_role("heading", name="What a persona knows").wait_for()
        page.get_by_role("button", name="Refresh").click()
        check(page, "memory")

        page.goto("/#/settings/account")
        page.get_by_role("heading", name="Link Discord").wait_for()
        check(page, "settings-account")
    finally:
        context.close()
