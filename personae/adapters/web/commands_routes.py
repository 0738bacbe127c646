"""Plugin commands over HTTP: the same commands every front end offers, run in
the caller's scope."""

from __future__ import annotations

import base64

from aiohttp import web

from personae.adapters.web.auth import current_user
from personae.adapters.web.chat_routes import PREFIX
from personae.adapters.web.helpers import check_chat_allowed, ok, runtime, settings, visible_persona
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import PERSONA_ID, Endpoint
from personae.adapters.web.schemas import (
    AttachmentOut,
    CommandBody,
    CommandInfo,
    CommandList,
    CommandOut,
)
from personae.adapters.web.uploads import read_json
from personae.core.commands import Command, CommandContext, check_args
from personae.core.errors import CommandError


def _check_args(command: Command, args: dict[str, str]) -> None:
    """Named arguments from JSON: unknown names are refused, then the checks a
    typed command line gets."""
    unknown = sorted(set(args) - {option.name for option in command.options})
    if unknown:
        raise CommandError(f"/{command.name} has no option {', '.join(unknown)}.")
    check_args(command, args)


async def list_commands(request: web.Request) -> web.Response:
    await current_user(request)
    commands = [
        CommandInfo(
            name=c.name,
            description=c.description,
            options=[
                {
                    "name": o.name,
                    "description": o.description,
                    "required": o.required,
                    "choices": list(o.choices),
                }
                for o in c.options
            ],
        )
        for c in runtime(request).commands.all()
    ]
    return ok(CommandList(commands=commands))


async def run_command(request: web.Request) -> web.Response:
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    rt = runtime(request)
    name = request.match_info["name"]
    command = rt.commands.get(name)
    if command is None:
        raise Problem(404, "Unknown command", f"There is no command {name!r}.")
    body = await read_json(request, CommandBody, settings(request).web.max_body_bytes)
    _check_args(command, body.args)
    check_chat_allowed(request, principal)
    context = CommandContext(
        runtime=rt,
        scope=entry.scope(principal.user_id),
        platform="web",
        args=dict(body.args),
        confirmed=body.confirm,
        visible_id=entry.id,
        conversation=PREFIX + body.conversation,
        user_name=principal.account.name,
    )
    result = await rt.commands.run(command, context)
    attachment = None
    if result.attachment is not None:
        filename, content = result.attachment
        attachment = AttachmentOut(
            filename=filename, content_base64=base64.b64encode(content).decode("ascii")
        )
    return ok(
        CommandOut(
            text=result.text, needs_confirmation=result.needs_confirmation, attachment=attachment
        )
    )


ENDPOINTS = [
    Endpoint("GET", "/api/commands", list_commands, "The commands plugins registered",
             "commands", response=CommandList),
    Endpoint("POST", "/api/personas/{persona_id}/commands/{name}", run_command,
             "Run a command in the caller's scope", "commands", body=CommandBody,
             response=CommandOut, errors=(400, 404, 429),
             path_params={"persona_id": PERSONA_ID,
                          "name": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$"}},
             description="A destructive command first answers `needs_confirmation: true`; "
             "send it again with `confirm: true` to go ahead."),
]  # fmt: skip
