"""Who is asking: a bearer token (API clients) or a session cookie (browsers).

Authentication is done on demand by :func:`current_user`, which every protected
handler calls first; the scope of every operation is derived from the account
it returns, never from ids in the request. Cookie-authenticated requests that
change state must carry the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Literal

from aiohttp import web

from personae.adapters.web.keys import ACCOUNTS, SETTINGS
from personae.adapters.web.problems import IS_ADMIN, Problem
from personae.storage.accounts import Account

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
_PRINCIPAL = web.RequestKey("personae.principal", object)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    account: Account
    via: Literal["token", "session"]
    csrf_token: str | None = None
    session_secret: str | None = None

    @property
    def user_id(self) -> int:
        return self.account.id


def unauthorized(
    detail: str = "Log in, or send an API token as 'Authorization: Bearer ...'.",
) -> Problem:
    return Problem(
        401,
        "Authentication required",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="personae"'},
    )


async def authenticate(request: web.Request) -> Principal | None:
    """The caller, or None when anonymous. A bad bearer token is a 401, a
    state-changing cookie request without the right CSRF token a 403."""
    if _PRINCIPAL in request:
        return request[_PRINCIPAL]  # type: ignore[return-value]
    accounts = request.config_dict[ACCOUNTS]
    principal: Principal | None = None
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthorized("Use 'Authorization: Bearer <token>'.")
        account = await accounts.authenticate_token(value.strip())
        if account is None:
            raise unauthorized("The API token is unknown or revoked.")
        principal = Principal(account, "token")
    else:
        secret = request.cookies.get(request.config_dict[SETTINGS].web.cookie_name)
        session = await accounts.session(secret) if secret else None
        if session is not None:
            principal = Principal(session.account, "session", session.csrf_token, secret)
            if request.method not in SAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER, "")
                if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
                    raise Problem(
                        403,
                        "CSRF token missing or wrong",
                        f"Send the session's CSRF token in the {CSRF_HEADER} header.",
                    )
    request[_PRINCIPAL] = principal
    request[IS_ADMIN] = principal is not None and principal.account.is_admin
    return principal


async def current_user(request: web.Request) -> Principal:
    """The authenticated caller; a 401 problem when anonymous."""
    principal = await authenticate(request)
    if principal is None:
        raise unauthorized()
    return principal


def client_address(request: web.Request) -> str:
    """The client's address; ``X-Forwarded-For`` is believed only from a trusted
    proxy (``web.trusted_proxies``)."""
    peer = request.remote or "unknown"
    networks = [
        ip_network(n, strict=False) for n in request.config_dict[SETTINGS].web.trusted_proxies
    ]
    if not networks:
        return peer

    def trusted(address: str) -> bool:
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    if not trusted(peer):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop
    return hops[0] if hops else peer
