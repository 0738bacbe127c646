"""Chat: streamed replies, history, the persona switcher, readable errors,
voice playback and follow-up questions."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import CHAT_RATE, FOLLOW_UP, STORY, api, create_persona, sign_up

pytestmark = pytest.mark.e2e

STREAMING_TEXT = """() => {
  const text = document.querySelector('.msg.assistant.streaming .text');
  return text && text.textContent.length > 0 ? text.textContent : null;
}"""


def chat_with(page: Any, name: str, **fields: Any) -> dict[str, Any]:
    """A new custom persona, made current, with the chat page open on it."""
    persona = create_persona(page, name, **{"curiosity": "off", **fields})
    api(page, "PUT", "/api/me/current-persona", {"persona_id": persona["id"]})
    page.goto("/#/settings/personas")
    page.get_by_role("link", name="Chat", exact=True).click()
    expect(page.get_by_label("Talking to")).to_have_value(persona["id"])
    return persona


def send(page: Any, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def test_reply_streams_in_and_the_history_is_there_after_reload(page: Any, username: str) -> None:
    sign_up(page, username)
    chat_with(page, "Storyteller")

    send(page, "Tell me a story")
    partial = page.wait_for_function(STREAMING_TEXT).json_value()
    assert 0 < len(partial) < len(STORY) and STORY.startswith(partial)
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".text")).to_have_text(STORY)
    expect(reply).not_to_have_attribute("aria-busy", "true")

    page.reload()
    log = page.get_by_role("log", name="Conversation with Storyteller")
    expect(log.locator(".msg.user .text")).to_have_text(["Tell me a story"])
    expect(log.locator(".msg.assistant .text")).to_have_text([STORY])


def test_switching_persona_shows_that_personas_conversation(page: Any, username: str) -> None:
    sign_up(page, username)
    other = create_persona(page, "Quiet One", curiosity="off")
    chat_with(page, "Chatty One")
    send(page, "Hello Chatty")
    expect(page.locator(".msg.assistant .text").last).to_contain_text("You said: Hello Chatty")

    page.get_by_label("Talking to").select_option(label="Quiet One")
    expect(page.get_by_role("log", name="Conversation with Quiet One")).to_be_attached()
    expect(page.locator(".msg")).to_have_count(0)
    assert api(page, "GET", "/api/me")["current_persona"] == other["id"]

    page.get_by_label("Talking to").select_option(label="Chatty One")
    expect(page.locator(".msg.user .text")).to_have_text(["Hello Chatty"])


def test_ollama_being_down_is_explained_and_the_message_kept(
    page: Any, username: str, live_server: Any
) -> None:
    sign_up(page, username)
    chat_with(page, "Patient One")
    live_server.run(live_server.fake.stop())
    try:
        send(page, "Are you there?")
        expect(page.get_by_role("alert")).to_contain_text(
            "The language model is not available right now (is Ollama running?)"
        )
        expect(page.locator(".msg.user.failed")).to_contain_text("Not sent")
        expect(page.get_by_label("Message")).to_have_value("Are you there?")
    finally:
        live_server.run(live_server.fake.start())

    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg.assistant .text").last).to_have_text(
        "Nice to hear from you. You said: Are you there?"
    )
    expect(page.get_by_role("alert")).to_be_hidden()


def test_rate_limit_is_explained(page: Any, username: str) -> None:
    sign_up(page, username)
    persona = chat_with(page, "Busy One")
    for number in range(CHAT_RATE):
        api(page, "POST", f"/api/personas/{persona['id']}/chat", {"message": f"hi {number}"})

    send(page, "One more")
    expect(page.get_by_role("alert")).to_contain_text(
        "You are sending messages too fast. Try again in"
    )


def test_follow_up_question_appears_in_the_chat(page: Any, username: str) -> None:
    sign_up(page, username)
    chat_with(page, "Curious One", curiosity="high")

    send(page, "My cat is called Miso.")
    follow_up = page.locator(".msg.follow-up")
    expect(follow_up).to_contain_text(FOLLOW_UP, timeout=15_000)
    expect(follow_up).to_contain_text("follow-up question")


def test_replies_can_be_played_when_voice_is_available(page: Any, username: str) -> None:
    sign_up(page, username)
    chat_with(page, "Speaker")
    send(page, "Say something")
    reply = page.locator(".msg.assistant").last
    play = reply.get_by_role("button", name="Play this reply from Speaker")
    with page.expect_response(lambda r: r.url.endswith("/audio")) as audio:
        play.click()
    assert audio.value.status == 200
    assert audio.value.headers["content-type"].split(";")[0] in ("audio/ogg", "audio/wav")
    expect(play).to_have_text("▶ Play")  # back from "Playing…"
    expect(page.get_by_role("alert")).to_be_hidden()
