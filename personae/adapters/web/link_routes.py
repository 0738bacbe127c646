"""Account linking: redeem a one-time code from another front end (``/link`` on
Discord) so that identity and the caller's web account become one person with
one memory (see docs/discord.md)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from personae.adapters.discord.linking import LinkCodeError, LinkCodes
from personae.adapters.web.auth import current_user
from personae.adapters.web.helpers import ok, runtime, settings
from personae.adapters.web.keys import ACCOUNTS, LOGIN_LIMITER
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import Endpoint
from personae.adapters.web.schemas import Body
from personae.adapters.web.uploads import read_json


class LinkBody(Body):
    code: str = Field(
        min_length=1, max_length=32, description='The code /link showed, e.g. "ABCD-EFGH".'
    )


class LinkOut(BaseModel):
    platform: str = Field(description='Where the linked identity lives, e.g. "discord".')
    external_id: str = Field(description="The identity's id there (a Discord user id).")


async def redeem_link_code(request: web.Request) -> web.Response:
    """Link the code's identity to the caller; what it had moves to the caller."""
    principal = await current_user(request)
    body = await read_json(request, LinkBody, settings(request).web.max_body_bytes)
    wait = request.config_dict[LOGIN_LIMITER].hit(("link", principal.user_id))
    if wait is not None:
        raise Problem(
            429,
            "Too many attempts",
            f"Too many link codes tried; try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    try:
        result = await LinkCodes(runtime(request).clock).redeem(body.code, principal.user_id)
    except LinkCodeError as error:
        raise Problem(400, "Link code not accepted", str(error)) from None
    request.config_dict[ACCOUNTS].changed()  # the linked identity's account is gone
    return ok(LinkOut(platform=result.platform, external_id=result.external_id))


ENDPOINTS = [
    Endpoint("POST", "/api/link", redeem_link_code, "Link another account with a code",
             "accounts", body=LinkBody, response=LinkOut, errors=(429,),
             description="Redeem the one-time code `/link` shows on Discord. The Discord "
             "identity joins the caller's account and its conversations and memory move "
             "over. Wrong, expired or used codes: 400."),
]  # fmt: skip
