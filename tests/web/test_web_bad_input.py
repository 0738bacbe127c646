"""Input the storage cannot take is refused at the door: every route of
/openapi.json answers an over-long id, an id in non-ASCII digits, a NUL
character or a malformed multipart body with a 4xx problem document, never a
500 (and a stream never starts for a request that will fail)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import FAST_HASHER, Caller, Response

from personae.adapters.web import init_app
from personae.adapters.web.app import endpoints
from personae.adapters.web.openapi import build_openapi
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.core.types import Scope
from personae.storage.accounts import AccountStore

pytestmark = pytest.mark.both_databases

DOCUMENT = build_openapi(endpoints(), cookie_name="personae_session")
OPERATIONS = [
    (method.upper(), path)
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if path != "/api/events"
]
GOOD = {
    "persona_id": "sage",
    "model": "sage",
    "conversation": "default",
    "item_id": "1",
    "message_id": "1",
    "follow_up_id": "1",
    "token_id": "1",
    "name": "help",
    "voice_id": "espeak:en-us",
}


def _fill(path: str, **values: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), GOOD[m.group(1)]), path)


def _integer_params(method: str, path: str) -> list[str]:
    parameters = DOCUMENT["paths"][path][method.lower()].get("parameters", [])
    return [
        p["name"] for p in parameters if p["in"] == "path" and p["schema"].get("type") == "integer"
    ]


def _is_problem(response: Response) -> bool:
    return (
        400 <= response.status < 500
        and response.content_type == "application/problem+json"
        and response.data["status"] == response.status
    )


async def _call(caller: Caller, method: str, path: str) -> Response:
    kwargs: dict[str, Any] = {}
    if method in {"POST", "PUT", "PATCH"}:
        kwargs["json"] = {}
    return await caller.call(method, path, **kwargs)


async def test_persona_ids_over_64_characters_are_404_on_every_route(alice: Caller) -> None:
    long_id = "a" * 65
    routes = [(m, p) for m, p in OPERATIONS if "{persona_id}" in p or "{model}" in p]
    assert len(routes) > 15
    answers = {
        f"{method} {path}": await _call(
            alice, method, _fill(path, persona_id=long_id, model=long_id)
        )
        for method, path in routes
    }

    wrong = {route: r.status for route, r in answers.items() if not _is_problem(r)}
    assert wrong == {}
    assert {r.status for r in answers.values()} == {404}


@pytest.mark.parametrize("digit", ["%D9%A7", "%C2%B2", "%EF%BC%91", "1%E2%80%8B"])
async def test_integer_ids_in_other_scripts_digits_are_404(alice: Caller, digit: str) -> None:
    routes = [(m, p) for m, p in OPERATIONS if _integer_params(m, p)]
    assert len(routes) >= 5
    answers = {
        f"{m} {p}": await _call(alice, m, _fill(p, **dict.fromkeys(_integer_params(m, p), digit)))
        for m, p in routes
    }

    assert {route: r.status for route, r in answers.items()} == dict.fromkeys(answers, 404)
    assert all(_is_problem(r) for r in answers.values())


async def test_a_memory_item_named_in_arabic_indic_digits_is_not_item_7(
    alice: Caller, runtime: Runtime
) -> None:
    scope = Scope("sage", alice.id)
    items = [await runtime.memory.add(scope, f"likes tea number {n}") for n in range(7)]
    assert items[-1].id == 7

    edited = await alice.call("PATCH", "/api/personas/sage/memory/%D9%A7", json={"text": "x"})
    deleted = await alice.call("DELETE", "/api/personas/sage/memory/%D9%A7")

    assert edited.status == deleted.status == 404
    assert sorted(i.text for i in await runtime.memory.list(scope)) == [
        f"likes tea number {n}" for n in range(7)
    ]


async def test_nul_characters_in_json_bodies_are_422_and_store_nothing(
    alice: Caller, runtime: Runtime
) -> None:
    requests = [
        ("POST", "/api/personas/sage/chat", {"message": "hello\x00there"}),
        ("POST", "/api/personas", {"name": "Nul", "id": "nul", "description": "a\x00b"}),
        ("PATCH", "/api/personas/sage", {"name": "Sage\x00"}),
        ("POST", "/api/tokens", {"name": "t\x00"}),
        ("POST", "/v1/chat/completions", {"model": "sage", "messages": [
            {"role": "user", "content": "hi\x00"}]}),
        ("POST", "/api/personas/sage/commands/help", {"args": {"x\x00": "y"}}),
    ]  # fmt: skip
    answers = [await alice.call(m, p, json=body) for m, p, body in requests]

    assert [r.status for r in answers] == [422] * len(requests)
    assert all("NUL" in r.data["detail"] for r in answers)
    assert await runtime.history.conversations(Scope("sage", alice.id)) == []
    assert "nul" not in {e.id for e in await runtime.personas.list(alice.id)}


async def test_a_streamed_chat_with_a_nul_character_never_starts_the_stream(
    alice: Caller,
) -> None:
    answer = await alice.post(
        "/api/personas/sage/chat",
        json={"message": "hi\x00", "stream": True},
        headers={"Accept": "text/event-stream"},
    )

    assert answer.status == 422
    assert answer.content_type == "application/problem+json"
    assert b"HTTP/1.1" not in answer.body


async def test_nul_characters_in_the_query_string_are_400(alice: Caller) -> None:
    answers = [
        await alice.get("/api/personas/sage/conversations/default/messages?before=1%00"),
        await alice.get("/api/voices/espeak:en-us/preview?text=hi%00"),
        await alice.call("DELETE", "/api/me/data?persona_id=sage%00"),
    ]

    assert [r.status for r in answers] == [400, 400, 400]
    assert all(_is_problem(r) for r in answers)


@pytest.mark.parametrize(
    "header",
    [
        b'Content-Disposition: form-data; name="file"; filename="a\x01b.png"',
        b'Content-Disposition: form-data; name="fi\x00le"; filename="a.png"',
        b'Content-Disposition: form-data; name="file"; filename="a.png"\r\nX-\x01: y',
    ],
)
@pytest.mark.parametrize(
    "path", ["/api/personas/sage/avatar", "/api/personas/import", "/api/personas/sage/voice-sample"]
)
async def test_control_characters_in_multipart_part_headers_are_400(
    alice: Caller, header: bytes, path: str
) -> None:
    body = b"--BB\r\n" + header + b"\r\nContent-Type: image/png\r\n\r\nDATA\r\n--BB--\r\n"
    answer = await alice.call(
        "PUT" if not path.endswith("import") else "POST",
        path,
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=BB"},
    )

    assert answer.status == 400, answer.data
    assert answer.data["title"] == "Malformed multipart body"


async def test_an_error_after_a_stream_began_closes_it_instead_of_writing_a_second_answer(
    settings: Settings, runtime: Runtime
) -> None:
    async def breaks_mid_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: one\n\n")
        raise RuntimeError("a bug after the first event")

    app = init_app(settings, runtime=runtime, accounts=AccountStore(FAST_HASHER))
    app.router.add_get("/breaks", breaks_mid_stream)
    async with TestServer(app, host="127.0.0.1") as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /breaks HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()

    assert raw.startswith(b"HTTP/1.1 200")
    assert b"data: one" in raw
    assert raw.count(b"HTTP/1.1") == 1
