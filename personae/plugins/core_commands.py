"""Commands every front end offers: /help, /forget, /export."""

from __future__ import annotations

import json
from collections.abc import Callable

from personae.core.commands import Command, CommandContext, CommandOption, CommandResult
from personae.core.hookspecs import hookimpl


async def show_help(ctx: CommandContext) -> str:
    lines = ["Commands:"]
    lines.extend(f"  /{c.name} - {c.description}" for c in ctx.runtime.commands.all())
    return "\n".join(lines)


async def forget(ctx: CommandContext) -> CommandResult:
    everything = ctx.args.get("what") == "all"
    target = "every persona" if everything else ctx.persona_id
    if not ctx.confirmed:
        return CommandResult(
            f"This deletes everything {target} remembers about you, and your "
            "conversations. Confirm to go ahead.",
            needs_confirmation=True,
        )
    counts = await ctx.runtime.forget_user(
        ctx.scope.user_id, None if everything else ctx.scope.persona_id
    )
    return CommandResult(f"Forgotten: {sum(counts.values())} records ({target}).")


async def export(ctx: CommandContext) -> CommandResult:
    everything = ctx.args.get("what") == "all"
    data = await ctx.runtime.export_user_data(
        ctx.scope.user_id, None if everything else ctx.scope.persona_id
    )
    blob = json.dumps(data, indent=2, ensure_ascii=False, default=str).encode()
    return CommandResult("Your data is attached.", attachment=("personae-export.json", blob))


_WHAT = CommandOption("what", "this persona, or all", choices=("this", "all"))


@hookimpl(trylast=True)
def register_commands(register: Callable[[Command], None]) -> None:
    register(Command("help", "List the commands", show_help))
    register(Command("forget", "Forget me (this persona, or all)", forget, (_WHAT,)))
    register(Command("export", "Export my data as JSON", export, (_WHAT,)))
