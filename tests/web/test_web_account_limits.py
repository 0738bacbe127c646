"""Account abuse limits: sign-ups per address and for the whole service (each is
a 64 MiB Argon2 hash), a per-account login backoff that holds whatever address
the attempts come from, and a server that need not hand administrator rights to
whoever signs up first."""

from __future__ import annotations

import pytest
from conftest import PASSWORD, Caller, MakeCaller

pytestmark = pytest.mark.both_databases
PROXY = {"trusted_proxies": ["127.0.0.1/32"]}


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _signup(caller: Caller, name: str, address: str) -> int:
    answer = await caller.post(
        "/api/auth/signup",
        json={"username": name, "password": PASSWORD},
        headers=_from(address),
    )
    return answer.status


@pytest.mark.parametrize(
    "web_overrides",
    [PROXY | {"signup_rate_per_minute": 2, "signup_global_rate_per_minute": 0}],
)
async def test_sign_ups_are_limited_per_address(anonymous: Caller) -> None:
    statuses = [await _signup(anonymous, f"user{n}", "203.0.113.7") for n in range(3)]
    elsewhere = await _signup(anonymous, "other", "198.51.100.1")

    assert statuses == [201, 201, 429]
    assert elsewhere == 201


@pytest.mark.parametrize(
    "web_overrides",
    [PROXY | {"signup_rate_per_minute": 0, "signup_global_rate_per_minute": 3}],
)
async def test_sign_ups_are_limited_for_the_whole_service(anonymous: Caller) -> None:
    statuses = [await _signup(anonymous, f"user{n}", f"203.0.113.{n}") for n in range(4)]
    refused = await anonymous.post(
        "/api/auth/signup",
        json={"username": "late", "password": PASSWORD},
        headers=_from("192.0.2.9"),
    )

    assert statuses == [201, 201, 201, 429]
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.data["title"] == "Too many sign-ups"


async def _login(caller: Caller, name: str, password: str, address: str) -> tuple[int, str]:
    answer = await caller.post(
        "/api/auth/login", json={"username": name, "password": password}, headers=_from(address)
    )
    return answer.status, answer.headers.get("Retry-After", "")


@pytest.mark.parametrize("web_overrides", [PROXY | {"login_failures_before_backoff": 2}])
async def test_wrong_passwords_for_one_account_back_off_its_logins_from_any_address(
    alice: Caller, bob: Caller, anonymous: Caller
) -> None:
    failures = [
        await _login(anonymous, "alice", "wrong password", f"203.0.113.{n}") for n in (1, 2)
    ]
    locked, wait = await _login(anonymous, "alice", PASSWORD, "198.51.100.50")
    other_account, _ = await _login(anonymous, "bob", PASSWORD, "203.0.113.1")

    assert [status for status, _ in failures] == [401, 401]
    assert locked == 429 and int(wait) >= 1
    assert other_account == 200


@pytest.mark.parametrize("web_overrides", [PROXY | {"login_failures_before_backoff": 2}])
async def test_unknown_names_back_off_like_real_ones(anonymous: Caller, alice: Caller) -> None:
    real = [await _login(anonymous, "alice", "nope-nope", "203.0.113.1") for _ in range(3)]
    unknown = [await _login(anonymous, "nobody", "nope-nope", "203.0.113.1") for _ in range(3)]

    assert [s for s, _ in real] == [s for s, _ in unknown] == [401, 401, 429]


async def test_a_right_password_clears_the_failures(alice: Caller, anonymous: Caller) -> None:
    for _ in range(4):
        assert (await _login(anonymous, "alice", "wrong password", "x"))[0] == 401
    assert (await _login(anonymous, "alice", PASSWORD, "x"))[0] == 200
    assert (await _login(anonymous, "alice", "wrong password", "x"))[0] == 401


@pytest.mark.parametrize("web_overrides", [{"first_signup_admin": False}])
async def test_the_first_sign_up_is_not_an_administrator_when_turned_off(
    make_caller: MakeCaller,
) -> None:
    first = await make_caller("first")

    assert first.account["is_admin"] is False


@pytest.mark.parametrize("web_overrides", [{"first_signup_admin": False, "allow_signup": False}])
async def test_closed_sign_up_without_first_admin_is_closed_to_everyone(
    anonymous: Caller,
) -> None:
    answer = await anonymous.post(
        "/api/auth/signup", json={"username": "first", "password": PASSWORD}
    )

    assert answer.status == 403
