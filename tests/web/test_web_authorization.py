"""The authorization matrix: every endpoint that takes an object id, tried by
another user and by an anonymous client, answers 401/403/404, leaks nothing and
changes nothing. The scope always comes from the authenticated user."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Caller, MakeCaller, png_bytes

from personae.adapters.web.app import endpoints
from personae.core.runtime import Runtime
from personae.core.types import Scope

pytestmark = pytest.mark.both_databases

SECRET_NAME = "Bob's Secret Friend"
SECRET_FACT = "bob keeps turnips under the bed"


async def _bob_world(bob: Caller, runtime: Runtime) -> dict[str, Any]:
    made = await bob.post(
        "/api/personas", json={"name": SECRET_NAME, "id": "bobs-secret", "greeting": "psst"}
    )
    assert made.status == 201, made.data
    avatar = await bob.call("PUT", "/api/personas/bobs-secret/avatar", data=png_bytes())
    assert avatar.status == 200, avatar.data
    for persona in ("bobs-secret", "sage"):
        chat = await bob.post(f"/api/personas/{persona}/chat", json={"message": SECRET_FACT})
        assert chat.status == 200, chat.data
    secret_scope = await runtime.personas.scope("bobs-secret", bob.id)  # its storage key
    secret_item = await runtime.memory.add(secret_scope, SECRET_FACT)
    sage_item = await runtime.memory.add(Scope("sage", bob.id), SECRET_FACT)
    follow_up = await runtime.followups.create(
        Scope("sage", bob.id),
        conversation="web:default",
        platform="web",
        topic="turnips",
        question="How are the turnips?",
        due_at=datetime.now(UTC),
    )
    tokens = await bob.get("/api/tokens")
    return {
        "secret_item": secret_item.id,
        "sage_item": sage_item.id,
        "follow_up": follow_up.id,
        "token": tokens.data["tokens"][0]["id"],
    }


def _requests(ids: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    p = "/api/personas/bobs-secret"
    return [
        ("GET", p, {}),
        ("PATCH", p, {"json": {"name": "pwned"}}),
        ("DELETE", p, {}),
        ("GET", f"{p}/avatar", {}),
        ("PUT", f"{p}/avatar", {"data": png_bytes(color="red")}),
        ("DELETE", f"{p}/avatar", {}),
        ("GET", f"{p}/card", {}),
        ("GET", f"{p}/card?format=png", {}),
        ("POST", f"{p}/chat", {"json": {"message": "what does bob keep?"}}),
        ("POST", f"{p}/chat", {"json": {"message": "hi", "stream": True}}),
        ("GET", f"{p}/conversations", {}),
        ("GET", f"{p}/conversations/default/messages", {}),
        ("DELETE", f"{p}/conversations/default", {}),
        ("POST", f"{p}/conversations/other/greeting", {"json": {}}),
        ("GET", f"{p}/lorebook", {}),
        ("PUT", f"{p}/lorebook", {"json": {"entries": [{"keys": ["x"], "content": "pwned"}]}}),
        ("DELETE", f"{p}/lorebook", {}),
        ("GET", f"{p}/memory", {}),
        ("PATCH", f"{p}/memory/{ids['secret_item']}", {"json": {"text": "pwned"}}),
        ("GET", f"{p}/memory/{ids['secret_item']}/history", {}),
        ("GET", f"/api/personas/sage/memory/{ids['sage_item']}/history", {}),
        ("DELETE", f"{p}/memory/{ids['secret_item']}", {}),
        ("PATCH", f"/api/personas/sage/memory/{ids['sage_item']}", {"json": {"text": "pwned"}}),
        ("DELETE", f"/api/personas/sage/memory/{ids['sage_item']}", {}),
        ("DELETE", f"{p}/data", {}),
        ("POST", f"{p}/commands/export", {"json": {}}),
        ("POST", f"{p}/commands/forget", {"json": {"confirm": True}}),
        ("DELETE", f"/api/tokens/{ids['token']}", {}),
        ("POST", f"/api/followups/{ids['follow_up']}/ack", {}),
        ("PUT", "/api/me/current-persona", {"json": {"persona_id": "bobs-secret"}}),
        ("GET", "/v1/models/bobs-secret", {}),
        (
            "POST",
            "/v1/chat/completions",
            {"json": {"model": "bobs-secret", "messages": [{"role": "user", "content": "hi"}]}},
        ),
    ]


ELSEWHERE = {
    # Voice routes have their own matrix in tests/web/test_voice_routes.py (they need
    # real audio): another user and anonymous on a persona's sample and reply audio.
    "GET /api/voices/{voice_id}/preview": "a public catalogue: every voice id is listed",
    "GET /api/personas/{persona_id}/messages/{message_id}/audio": "test_voice_routes.py",
    "PUT /api/personas/{persona_id}/voice-sample": "test_voice_routes.py",
    "GET /api/personas/{persona_id}/voice-sample": "test_voice_routes.py",
    "DELETE /api/personas/{persona_id}/voice-sample": "test_voice_routes.py",
}


def _template(path: str) -> str:
    """``/api/personas/bobs-secret/memory/12`` -> ``/api/personas/{}/memory/{}``."""
    parts = path.split("?")[0].strip("/").split("/")
    fixed = {"api", "personas", "memory", "conversations", "messages", "lorebook", "avatar",
             "card", "chat", "history", "greeting", "data", "commands", "tokens", "followups",
             "ack", "me", "current-persona", "v1", "models", "completions"}  # fmt: skip
    return "/" + "/".join(part if part in fixed else "{}" for part in parts)


def test_the_matrix_tries_every_route_that_takes_an_id() -> None:
    """A route added with an id in its path is in the matrix above, or its own
    matrix is named here: none is forgotten."""
    tried = {(method, _template(path)) for method, path, _ in _requests(dict.fromkeys(
        ("secret_item", "sage_item", "follow_up", "token"), 1
    ))}  # fmt: skip
    missing = []
    for endpoint in endpoints():
        if "{" not in endpoint.path:
            continue
        name = f"{endpoint.method} {endpoint.path}"
        template = re.sub(r"\{[^}]+\}", "{}", endpoint.path)
        if (endpoint.method, template) not in tried and name not in ELSEWHERE:
            missing.append(name)
    assert missing == []


async def _snapshot(bob: Caller, runtime: Runtime) -> dict[str, Any]:
    persona = await bob.get("/api/personas/bobs-secret")
    avatar = await bob.get("/api/personas/bobs-secret/avatar")
    scopes = {p: await runtime.personas.scope(p, bob.id) for p in ("bobs-secret", "sage")}
    memory = {p: [i.text for i in await runtime.memory.list(s)] for p, s in scopes.items()}
    history = {
        p: [m.content for m in await runtime.history.page(s, "web:default")]
        for p, s in scopes.items()
    }
    assert memory["bobs-secret"] == [SECRET_FACT]  # the matrix has something to protect
    pending = await runtime.followups.pending_for_user(bob.id, platform="web")
    tokens = await bob.get("/api/tokens")
    return {
        "persona": persona.data,
        "avatar": avatar.body,
        "memory": memory,
        "history": history,
        "follow_ups": [f.id for f in pending],
        "tokens": [t["id"] for t in tokens.data["tokens"]],
    }


async def test_other_users_and_anonymous_cannot_reach_or_change_bobs_objects(
    make_caller: MakeCaller, runtime: Runtime
) -> None:
    await make_caller("admin")  # the first account is the administrator; keep it out
    bob = await make_caller("bob")
    carol = await make_caller("carol")
    carol_browser = await make_caller("carol2", via="session")
    anonymous = await make_caller(None)
    ids = await _bob_world(bob, runtime)
    before = await _snapshot(bob, runtime)

    for method, path, kwargs in _requests(ids):
        for caller, allowed in (
            (carol, {403, 404}),
            (carol_browser, {403, 404}),
            (anonymous, {401}),
        ):
            response = await caller.call(method, path, **kwargs)
            who = "anonymous" if caller is anonymous else caller.account["username"]
            assert response.status in allowed, (who, method, path, response.status, response.data)
            assert response.content_type == "application/problem+json", (method, path)
            assert SECRET_FACT.encode() not in response.body
            assert SECRET_NAME.encode() not in response.body
            assert b"Traceback" not in response.body

    assert await _snapshot(bob, runtime) == before
    me = await carol.get("/api/me")
    assert me.data["current_persona"] is None


async def test_listings_never_show_another_users_objects(
    make_caller: MakeCaller, runtime: Runtime
) -> None:
    await make_caller("admin")
    bob = await make_caller("bob")
    carol = await make_caller("carol")
    await _bob_world(bob, runtime)

    personas = await carol.get("/api/personas")
    models = await carol.get("/v1/models")
    memory = await carol.get("/api/personas/sage/memory")
    conversations = await carol.get("/api/personas/sage/conversations")
    follow_ups = await carol.get("/api/followups")
    tokens = await carol.get("/api/tokens")
    export = await carol.get("/api/me/export")

    assert "bobs-secret" not in {p["id"] for p in personas.data["personas"]}
    assert "bobs-secret" not in {m["id"] for m in models.data["data"]}
    assert memory.data == {"items": [], "summaries": []}
    assert conversations.data == {"conversations": []}
    assert follow_ups.data == {"follow_ups": []}
    assert [t["name"] for t in tokens.data["tokens"]] == ["tests"]
    for response in (personas, models, memory, export):
        assert SECRET_FACT.encode() not in response.body
        assert SECRET_NAME.encode() not in response.body


async def test_a_shared_persona_is_usable_but_not_changeable_by_others(
    make_caller: MakeCaller,
) -> None:
    await make_caller("admin")
    bob = await make_caller("bob")
    carol = await make_caller("carol")
    made = await bob.post("/api/personas", json={"name": "Open Book", "shared": True})
    assert made.status == 201
    persona_id = made.data["id"]

    seen = await carol.get(f"/api/personas/{persona_id}")
    chat = await carol.post(f"/api/personas/{persona_id}/chat", json={"message": "hello"})
    patch = await carol.call("PATCH", f"/api/personas/{persona_id}", json={"name": "Mine now"})
    delete = await carol.call("DELETE", f"/api/personas/{persona_id}")
    avatar = await carol.call("PUT", f"/api/personas/{persona_id}/avatar", data=png_bytes())

    assert seen.status == 200 and seen.data["mine"] is False and seen.data["editable"] is False
    assert chat.status == 200
    assert (patch.status, delete.status, avatar.status) == (403, 403, 403)
    assert (await bob.get(f"/api/personas/{persona_id}")).data["name"] == "Open Book"
