"""Accounts: sign-up, login sessions with CSRF protection, API tokens."""

from __future__ import annotations

import hashlib

import pytest
from conftest import PASSWORD, Caller, MakeCaller

from personae.storage.accounts import AccountStore
from personae.storage.models import ApiToken, User, WebSession


@pytest.mark.both_databases
async def test_the_first_account_is_the_administrator_and_later_ones_are_not(
    make_caller: MakeCaller,
) -> None:
    first = await make_caller("first")
    second = await make_caller("second")

    assert first.account["is_admin"] is True
    assert second.account["is_admin"] is False


@pytest.mark.both_databases
async def test_login_sets_an_httponly_samesite_cookie_and_returns_a_csrf_token(
    make_caller: MakeCaller,
) -> None:
    await make_caller("alice", via="session")
    browser = await make_caller(None)

    login = await browser.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})

    assert login.status == 200
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert login.data["csrf_token"]
    me = await browser.get("/api/me")
    assert me.status == 200 and me.data["username"] == "alice"
    assert me.data["csrf_token"] == login.data["csrf_token"]


async def test_a_cookie_request_that_changes_state_needs_the_csrf_token(
    make_caller: MakeCaller,
) -> None:
    browser = await make_caller("alice", via="session")
    csrf = browser.csrf
    browser.csrf = None

    refused = await browser.post("/api/tokens", json={"name": "x"})
    wrong = await browser.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "nope"})
    allowed = await browser.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf})

    assert (refused.status, wrong.status) == (403, 403)
    assert refused.data["title"] == "CSRF token missing or wrong"
    assert allowed.status == 201


async def test_logout_ends_the_session(make_caller: MakeCaller) -> None:
    browser = await make_caller("alice", via="session")

    out = await browser.post("/api/auth/logout")

    assert out.status == 204
    assert (await browser.get("/api/me")).status == 401
    assert await WebSession.all().count() == 0


async def test_wrong_password_and_unknown_user_get_the_same_answer(alice: Caller) -> None:
    wrong = await alice.post("/api/auth/login", json={"username": "alice", "password": "x" * 9})
    unknown = await alice.post("/api/auth/login", json={"username": "zed", "password": "x" * 9})

    assert wrong.status == unknown.status == 401
    assert wrong.data["title"] == unknown.data["title"] == "Wrong user name or password"


async def test_a_taken_user_name_is_a_conflict(alice: Caller, anonymous: Caller) -> None:
    again = await anonymous.post(
        "/api/auth/signup", json={"username": "ALICE", "password": PASSWORD}
    )

    assert again.status == 409


async def test_invalid_sign_up_details_are_422(anonymous: Caller) -> None:
    short = await anonymous.post("/api/auth/signup", json={"username": "al", "password": "short"})
    name = await anonymous.post(
        "/api/auth/signup", json={"username": "no spaces!", "password": PASSWORD}
    )

    assert short.status == 422 and short.data["errors"]
    assert name.status == 422


async def test_passwords_are_stored_as_argon2id_hashes(alice: Caller) -> None:
    user = await User.get(username="alice")

    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


async def test_the_default_account_store_uses_argon2id(runtime: object) -> None:
    store = AccountStore()
    account = await store.create("dora", PASSWORD)

    assert (await User.get(id=account.id)).password_hash.startswith("$argon2id$")  # type: ignore[union-attr]
    assert await store.verify("dora", PASSWORD) is not None
    assert await store.verify("dora", "wrong password") is None


async def test_api_tokens_are_stored_only_as_a_hash_and_can_be_revoked(alice: Caller) -> None:
    made = await alice.post("/api/tokens", json={"name": "laptop"})
    secret = made.data["token"]
    row = await ApiToken.get(id=made.data["id"])
    listed = await alice.get("/api/tokens")

    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {row.token_hash, row.prefix}
    assert all(t["token"] is None for t in listed.data["tokens"])
    assert "laptop" in [t["name"] for t in listed.data["tokens"]]

    used = await alice.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    revoked = await alice.call("DELETE", f"/api/tokens/{made.data['id']}")
    after = await alice.get("/api/me", headers={"Authorization": f"Bearer {secret}"})

    assert used.status == 200  # now known to the server's memory...
    assert revoked.status == 204
    assert after.status == 401 and "WWW-Authenticate" in after.headers  # updated at once
    assert (await alice.get("/api/me")).status == 200  # the other token still works


async def test_a_token_revoked_by_another_process_stops_within_the_cache_time(
    runtime: object,
) -> None:
    here, elsewhere, uncached = AccountStore(), AccountStore(), AccountStore(cache_seconds=0)
    account = await here.create("erin", PASSWORD)
    record, secret = await here.create_token(account.id, "cli")
    assert await here.authenticate_token(secret) == account
    assert await uncached.authenticate_token(secret) == account

    assert await elsewhere.revoke_token(account.id, record.id)

    assert await uncached.authenticate_token(secret) is None
    # This process learns of it when its entry expires (web.auth_cache_seconds);
    # forgetting the entries stands in for that wait here.
    assert await here.authenticate_token(secret) == account
    here.changed()
    assert await here.authenticate_token(secret) is None


async def test_a_malformed_authorization_header_is_401(anonymous: Caller) -> None:
    basic = await anonymous.get("/api/me", headers={"Authorization": "Basic YTpi"})
    empty = await anonymous.get("/api/me", headers={"Authorization": "Bearer "})

    assert basic.status == empty.status == 401


@pytest.mark.parametrize("web_overrides", [{"allow_signup": False}])
async def test_closed_sign_up_still_allows_the_first_account(make_caller: MakeCaller) -> None:
    first = await make_caller("owner")
    anonymous = await make_caller(None)

    closed = await anonymous.post(
        "/api/auth/signup", json={"username": "late", "password": PASSWORD}
    )

    assert first.account["is_admin"] is True
    assert closed.status == 403 and closed.data["title"] == "Sign-up is closed"


@pytest.mark.parametrize("web_overrides", [{"login_rate_per_minute": 3}])
async def test_repeated_logins_from_one_address_are_rate_limited(alice: Caller) -> None:
    body = {"username": "alice", "password": "wrong password"}
    statuses = [(await alice.post("/api/auth/login", json=body)).status for _ in range(4)]
    limited = await alice.post("/api/auth/login", json=body)

    assert statuses[:3] == [401, 401, 401]
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1


async def test_choosing_a_current_persona(alice: Caller) -> None:
    chosen = await alice.call("PUT", "/api/me/current-persona", json={"persona_id": "pip"})
    missing = await alice.call("PUT", "/api/me/current-persona", json={"persona_id": "nobody"})

    assert chosen.status == 200 and chosen.data["current_persona"] == "pip"
    assert missing.status == 404
    assert (await alice.get("/api/me")).data["current_persona"] == "pip"
