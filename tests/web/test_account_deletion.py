"""Deleting an account (``DELETE /api/me``) and forgetting one's data
(``DELETE /api/me/data``), checked against every table of the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, Caller, png_bytes
from tortoise import Tortoise

from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.core.types import Scope

USER_COLUMNS = ("user_id", "owner_id")


async def _rows_naming(user_id: int) -> dict[str, int]:
    """Rows per table that name ``user_id``, for every table in the database
    (``users.id``, and every ``user_id``/``owner_id`` column)."""
    conn = Tortoise.get_connection("default")
    if conn.capabilities.dialect == "sqlite":
        tables = [
            r["name"]
            for r in await conn.execute_query_dict(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        columns = {
            t: [c["name"] for c in await conn.execute_query_dict(f'PRAGMA table_info("{t}")')]
            for t in tables
        }
    else:
        columns = {}
        for r in await conn.execute_query_dict(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ):
            columns.setdefault(r["table_name"], []).append(r["column_name"])
    counts: dict[str, int] = {}
    for table, names in columns.items():
        wanted = [c for c in names if c in USER_COLUMNS] + (["id"] if table == "users" else [])
        for column in wanted:
            rows = await conn.execute_query_dict(
                f'SELECT COUNT(*) AS n FROM "{table}" WHERE "{column}" = {int(user_id)}'
            )
            if int(rows[0]["n"]):
                counts[f"{table}.{column}"] = int(rows[0]["n"])
    return counts


async def _fill(bob: Caller, alice: Caller, runtime: Runtime) -> dict[str, Any]:
    """Bob: a shared persona with an avatar, chats, memory, plugin state. Alice
    talks to Bob's persona and to sage."""
    created = await bob.post("/api/personas", json={"id": "bobs", "name": "Bobs", "shared": True})
    assert created.status == 201
    avatar = await bob.call("PUT", "/api/personas/bobs/avatar", data=png_bytes())
    assert avatar.status == 200
    for persona in ("sage", "bobs"):
        said = await bob.post(f"/api/personas/{persona}/chat", json={"message": "hi"})
        assert said.status == 200
    assert (await alice.post("/api/personas/bobs/chat", json={"message": "hi"})).status == 200
    assert (await alice.post("/api/personas/sage/chat", json={"message": "hi"})).status == 200
    await runtime.memory.add(Scope("sage", bob.id), "Bob has a dog")
    await runtime.memory.add(Scope("sage", alice.id), "Alice has a cat")
    await runtime.plugin_state.set(Scope("sage", bob.id), "mood", "level", 2)
    await runtime.background.drain()
    return {"key": (await runtime.personas.entry("bobs", viewer=bob.id)).key}


def _avatars(settings: Settings) -> list[Path]:
    folder = settings.data_dir / "avatars"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.both_databases
async def test_deleting_my_account_leaves_no_row_or_file_of_it_and_revokes_access(
    alice: Caller, bob: Caller, make_caller: Any, runtime: Runtime, settings: Settings
) -> None:
    filled = await _fill(bob, alice, runtime)
    browser = await make_caller(None)
    login = await browser.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert login.status == 200
    browser.csrf = login.data["csrf_token"]
    assert _avatars(settings)

    deleted = await bob.call("DELETE", "/api/me", json={"password": PASSWORD})

    assert deleted.status == 200 and deleted.data["total"] > 0
    assert (await bob.get("/api/me")).status == 401  # the token
    assert (await browser.get("/api/me")).status == 401  # the session
    assert await _rows_naming(bob.id) == {}
    assert _avatars(settings) == []
    messages = await runtime.history.conversations(Scope(filled["key"], alice.id))
    assert messages == []  # what alice told bob's persona went with it
    assert [i.text for i in await runtime.memory.list(Scope("sage", alice.id))] == [
        "Alice has a cat"
    ]
    assert (await alice.get("/api/me")).status == 200
    again = await browser.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert again.status == 401


async def test_deleting_my_account_needs_my_password(
    alice: Caller, bob: Caller, runtime: Runtime
) -> None:
    await _fill(bob, alice, runtime)
    before = await _rows_naming(bob.id)

    wrong = await bob.call("DELETE", "/api/me", json={"password": "not my password"})
    missing = await bob.call("DELETE", "/api/me", json={})

    assert wrong.status == 403 and missing.status == 422
    assert await _rows_naming(bob.id) == before
    assert (await bob.get("/api/me")).status == 200


@pytest.mark.both_databases
async def test_forgetting_my_data_keeps_only_the_account_its_personas_and_tokens(
    alice: Caller, bob: Caller, runtime: Runtime, settings: Settings
) -> None:
    await _fill(bob, alice, runtime)

    forgot = await bob.call("DELETE", "/api/me/data")

    assert forgot.status == 200
    kept = set(await _rows_naming(bob.id))
    assert kept <= {
        "users.id",
        "identities.user_id",
        "personas.owner_id",
        "api_tokens.user_id",
        "web_sessions.user_id",
        "memory_versions.user_id",
    }
    assert {"users.id", "personas.owner_id", "api_tokens.user_id"} <= kept
    assert (await bob.get("/api/me")).status == 200
    assert (await bob.get("/api/personas/bobs")).status == 200
    assert _avatars(settings)


async def test_the_openapi_document_describes_account_deletion(anonymous: Caller) -> None:
    spec = (await anonymous.get("/openapi.json")).data

    operation = spec["paths"]["/api/me"]["delete"]

    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert spec["components"]["schemas"][body.rsplit("/", 1)[-1]]["required"] == ["password"]
    assert "403" in operation["responses"]
