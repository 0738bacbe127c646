"""The per-user event stream, proactive follow-ups, and plugin commands."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

import httpx
from aiohttp.test_utils import TestServer
from conftest import Caller
from httpx_sse import aconnect_sse

from personae.core.proactive import ProactiveMessage
from personae.core.runtime import Runtime
from personae.core.types import Scope
from personae.storage.followups import FollowUpRecord


async def _follow_up(runtime: Runtime, user_id: int, question: str) -> FollowUpRecord:
    return await runtime.followups.create(
        Scope("pip", user_id),
        conversation="web:default",
        platform="web",
        topic="cats",
        question=question,
        due_at=datetime.now(UTC),
    )


def _message(record: FollowUpRecord) -> ProactiveMessage:
    return ProactiveMessage(
        id=record.id,
        scope=record.scope,
        conversation=record.conversation,
        platform="web",
        text=record.question,
    )


async def test_a_follow_up_is_pushed_to_the_users_open_stream_only(
    server: TestServer, alice: Caller, bob: Caller, runtime: Runtime
) -> None:
    record = await _follow_up(runtime, alice.id, "How is your cat?")
    url = str(server.make_url("/"))

    async with (
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {alice.token}"}) as a,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {bob.token}"}) as b,
        aconnect_sse(a, "GET", "/api/events") as alice_events,
        aconnect_sse(b, "GET", "/api/events") as bob_events,
    ):
        alice_stream, bob_stream = alice_events.aiter_sse(), bob_events.aiter_sse()
        assert (await anext(alice_stream)).event == "ready"
        assert (await anext(bob_stream)).event == "ready"

        delivered = await runtime.proactive.deliver(_message(record))
        event = await asyncio.wait_for(anext(alice_stream), 5)

        assert delivered is True
        assert event.event == "follow_up"
        assert event.json() == {
            "id": record.id,
            "kind": "follow_up",
            "persona_id": "pip",
            "conversation": "default",
            "text": "How is your cat?",
        }
        with_timeout = asyncio.wait_for(anext(bob_stream), 0.2)
        try:
            leaked = await with_timeout
        except TimeoutError:
            leaked = None
        assert leaked is None

    # Recording the delivery is the sender's job (the curiosity scheduler, with its
    # clock): the adapter only reports that it delivered.
    stored = await runtime.followups.get(record.scope, record.id)
    assert stored is not None and stored.status == "pending"


async def test_a_follow_up_for_a_user_without_a_stream_is_not_delivered(
    alice: Caller, runtime: Runtime
) -> None:
    record = await _follow_up(runtime, alice.id, "Still there?")

    delivered = await runtime.proactive.deliver(_message(record))

    assert delivered is False
    stored = await runtime.followups.get(record.scope, record.id)
    assert stored is not None and stored.status == "pending"


async def test_pending_follow_ups_are_listed_and_acknowledged(
    alice: Caller, runtime: Runtime
) -> None:
    record = await _follow_up(runtime, alice.id, "Did the cat come back?")

    listed = await alice.get("/api/followups")
    ack = await alice.post(f"/api/followups/{record.id}/ack")
    again = await alice.post(f"/api/followups/{record.id}/ack")

    assert [f["question"] for f in listed.data["follow_ups"]] == ["Did the cat come back?"]
    assert ack.status == 204 and again.status == 404
    assert (await alice.get("/api/followups")).data == {"follow_ups": []}


async def test_commands_run_in_the_callers_scope(alice: Caller, runtime: Runtime) -> None:
    await runtime.memory.add(Scope("sage", alice.id), "alice plays the cello")

    listed = await alice.get("/api/commands")
    profile = await alice.post("/api/personas/sage/commands/profile", json={})
    export = await alice.post("/api/personas/sage/commands/export", json={})
    unknown = await alice.post("/api/personas/sage/commands/nope", json={})
    bad_choice = await alice.post(
        "/api/personas/sage/commands/export", json={"args": {"what": "everything"}}
    )

    assert {"help", "forget", "export", "profile"} <= {c["name"] for c in listed.data["commands"]}
    assert "alice plays the cello" in profile.data["text"]
    attachment = export.data["attachment"]
    assert attachment["filename"].endswith(".json")
    assert "alice plays the cello" in base64.b64decode(attachment["content_base64"]).decode()
    assert unknown.status == 404
    assert bad_choice.status == 400 and bad_choice.data["title"] == "Command failed"


async def test_a_destructive_command_needs_confirmation(alice: Caller, runtime: Runtime) -> None:
    await runtime.memory.add(Scope("sage", alice.id), "alice plays the cello")

    asked = await alice.post("/api/personas/sage/commands/forget", json={})
    kept = await runtime.memory.count(Scope("sage", alice.id))
    done = await alice.post("/api/personas/sage/commands/forget", json={"confirm": True})

    assert asked.data["needs_confirmation"] is True and kept == 1
    assert done.data["needs_confirmation"] is False
    assert await runtime.memory.count(Scope("sage", alice.id)) == 0
