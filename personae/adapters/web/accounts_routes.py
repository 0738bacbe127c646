"""Accounts: sign up, log in and out (session cookie + CSRF token), the caller's
account and current persona, and API tokens."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from personae.adapters.web.auth import Principal, authenticate, client_address, current_user
from personae.adapters.web.helpers import ascii_digits, iso, ok, runtime, settings
from personae.adapters.web.keys import (
    ACCOUNTS,
    LOGIN_BACKOFF,
    LOGIN_LIMITER,
    SIGNUP_GLOBAL_LIMITER,
    SIGNUP_LIMITER,
)
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import INTEGER_ID, Endpoint
from personae.adapters.web.schemas import (
    AccountDeleteBody,
    AccountOut,
    CurrentPersonaBody,
    ForgetOut,
    LoginBody,
    SignupBody,
    TokenBody,
    TokenList,
    TokenOut,
)
from personae.adapters.web.uploads import read_json
from personae.core.errors import PersonaNotFound
from personae.storage.accounts import Account, AccountError, SessionRecord, TokenRecord


def _account_out(account: Account, csrf: str | None = None) -> AccountOut:
    return AccountOut(
        id=account.id,
        username=account.username,
        name=account.name,
        is_admin=account.is_admin,
        current_persona=account.current_persona,
        csrf_token=csrf,
    )


def _token_out(token: TokenRecord, secret: str | None = None) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        created_at=iso(token.created_at) or "",
        last_used_at=iso(token.last_used_at),
        token=secret,
    )


async def _start_session(request: web.Request, account: Account, status: int) -> web.Response:
    config = settings(request).web
    lifetime = timedelta(hours=config.session_lifetime_hours)
    secret, session = await request.config_dict[ACCOUNTS].create_session(account.id, lifetime)
    response = ok(_account_out(session.account, session.csrf_token), status)
    _set_cookie(request, response, secret, session)
    return response


def _set_cookie(
    request: web.Request, response: web.StreamResponse, secret: str, session: SessionRecord
) -> None:
    config = settings(request).web
    response.set_cookie(
        config.cookie_name,
        secret,
        max_age=int(config.session_lifetime_hours * 3600),
        path="/",
        httponly=True,
        secure=config.cookie_secure,
        samesite="Lax",
    )


def _too_many(title: str, detail: str, wait: int) -> Problem:
    return Problem(
        429, title, f"{detail} Try again in {wait} s.", headers={"Retry-After": str(wait)}
    )


async def signup(request: web.Request) -> web.Response:
    config = settings(request).web
    body = await read_json(request, SignupBody, config.max_body_bytes)
    accounts = request.config_dict[ACCOUNTS]
    if not config.allow_signup and (not config.first_signup_admin or await accounts.count() > 0):
        raise Problem(403, "Sign-up is closed", "Ask an administrator for an account.")
    wait = request.config_dict[SIGNUP_LIMITER].hit(client_address(request))
    if wait is not None:
        raise _too_many("Too many sign-ups", "Too many accounts were created from here.", wait)
    wait = request.config_dict[SIGNUP_GLOBAL_LIMITER].hit("*")
    if wait is not None:
        raise _too_many("Too many sign-ups", "The server is taking no new accounts now.", wait)
    try:
        account = await accounts.create(
            body.username,
            body.password,
            name=body.name,
            is_admin=None if config.first_signup_admin else False,
        )
    except AccountError as error:
        status = 409 if "taken" in str(error) else 422
        title = "User name taken" if status == 409 else "Invalid account details"
        raise Problem(status, title, str(error)) from None
    return await _start_session(request, account, 201)


async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LoginBody, settings(request).web.max_body_bytes)
    wait = request.config_dict[LOGIN_LIMITER].hit(client_address(request))
    if wait is not None:
        raise _too_many("Too many login attempts", "Too many logins from here.", wait)
    backoff = request.config_dict[LOGIN_BACKOFF]
    name = body.username.strip().lower()
    wait = backoff.wait(name)
    if wait is not None:
        raise _too_many(
            "Too many login attempts",
            "This account had too many wrong passwords in a row.",
            wait,
        )
    account = await request.config_dict[ACCOUNTS].verify(body.username, body.password)
    if account is None:
        backoff.failed(name)
        raise Problem(401, "Wrong user name or password", "Check both and try again.")
    backoff.succeeded(name)
    return await _start_session(request, account, 200)


async def logout(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    if principal is not None and principal.session_secret:
        await request.config_dict[ACCOUNTS].delete_session(principal.session_secret)
    response = web.Response(status=204)
    response.del_cookie(settings(request).web.cookie_name, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    principal = await current_user(request)
    account = await request.config_dict[ACCOUNTS].get(principal.user_id) or principal.account
    return ok(_account_out(account, principal.csrf_token))


async def set_current_persona(request: web.Request) -> web.Response:
    principal = await current_user(request)
    body = await read_json(request, CurrentPersonaBody, settings(request).web.max_body_bytes)
    if body.persona_id is not None:
        try:
            await runtime(request).personas.entry(body.persona_id, viewer=principal.user_id)
        except PersonaNotFound:
            raise Problem(404, "Persona not found", f"No persona {body.persona_id!r}.") from None
    accounts = request.config_dict[ACCOUNTS]
    await accounts.set_current_persona(principal.user_id, body.persona_id)
    account = await accounts.get(principal.user_id) or principal.account
    return ok(_account_out(account, principal.csrf_token))


async def list_tokens(request: web.Request) -> web.Response:
    principal = await current_user(request)
    tokens = await request.config_dict[ACCOUNTS].tokens(principal.user_id)
    return ok(TokenList(tokens=[_token_out(t) for t in tokens]))


async def create_token(request: web.Request) -> web.Response:
    principal = await current_user(request)
    body = await read_json(request, TokenBody, settings(request).web.max_body_bytes)
    record, secret = await request.config_dict[ACCOUNTS].create_token(principal.user_id, body.name)
    return ok(_token_out(record, secret), 201)


async def revoke_token(request: web.Request) -> web.Response:
    principal: Principal = await current_user(request)
    raw = request.match_info["token_id"]
    token_id = int(raw) if ascii_digits(raw) and len(raw) < 18 else 0
    if not await request.config_dict[ACCOUNTS].revoke_token(principal.user_id, token_id):
        raise Problem(404, "Token not found", f"You have no token {raw!r}.")
    return web.Response(status=204)


async def delete_account(request: web.Request) -> web.Response:
    """Delete the caller's account and everything of it (confirmed with the
    password): custom personas with their data and avatars, what every plugin
    stores about the caller, identities, tokens and sessions, which stop working
    at once."""
    principal = await current_user(request)
    body = await read_json(request, AccountDeleteBody, settings(request).web.max_body_bytes)
    accounts = request.config_dict[ACCOUNTS]
    account = await accounts.get(principal.user_id)
    confirmed = account is not None and await accounts.verify(account.username, body.password)
    if not confirmed or confirmed.id != principal.user_id:
        raise Problem(403, "Wrong password", "Confirm with your account's password.")
    try:
        counts = await runtime(request).delete_user(principal.user_id)
    finally:
        accounts.changed()  # every token and session of the account stops working now
    response = ok(ForgetOut(deleted=counts, total=sum(counts.values())))
    response.del_cookie(settings(request).web.cookie_name, path="/")
    return response


ENDPOINTS = [
    Endpoint("POST", "/api/auth/signup", signup, "Create an account and log in", "accounts",
             body=SignupBody, response=AccountOut, status=201, auth=False, errors=(403, 409, 429)),
    Endpoint("POST", "/api/auth/login", login, "Log in (sets the session cookie)", "accounts",
             body=LoginBody, response=AccountOut, auth=False, errors=(401, 429)),
    Endpoint("POST", "/api/auth/logout", logout, "Log out (ends the session)", "accounts",
             status=204, auth=False),
    Endpoint("GET", "/api/me", me, "The caller's account (and CSRF token)", "accounts",
             response=AccountOut),
    Endpoint("DELETE", "/api/me", delete_account, "Delete my account and everything of it",
             "accounts", body=AccountDeleteBody, response=ForgetOut, errors=(403,),
             description="Confirmed with the password. Removes the account, its custom "
             "personas (and what anyone stored under them), everything every plugin stores "
             "about the caller, identities, link codes, tokens and sessions. See docs/http.md."),
    Endpoint("PUT", "/api/me/current-persona", set_current_persona, "Choose the current persona",
             "accounts", body=CurrentPersonaBody, response=AccountOut, errors=(404,)),
    Endpoint("GET", "/api/tokens", list_tokens, "The caller's API tokens", "accounts",
             response=TokenList),
    Endpoint("POST", "/api/tokens", create_token, "Create an API token (shown once)", "accounts",
             body=TokenBody, response=TokenOut, status=201),
    Endpoint("DELETE", "/api/tokens/{token_id}", revoke_token, "Revoke an API token", "accounts",
             status=204, path_params={"token_id": INTEGER_ID}, errors=(404,)),
]  # fmt: skip
