"""Commands every front end offers: /help, /forget, /export, /greeting."""

from __future__ import annotations

import json
from collections.abc import Callable

from personae.core.commands import Command, CommandContext, CommandOption, CommandResult
from personae.core.errors import CommandError
from personae.core.greetings import greetings
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


async def greeting(ctx: CommandContext) -> str:
    """``/greeting`` lists the persona's greetings; ``/greeting N`` starts the
    conversation with greeting N, or swaps the greeting nobody has answered yet."""
    card = (await ctx.runtime.personas.by_key(ctx.scope.persona_id, viewer=ctx.scope.user_id)).card
    options = greetings(card)
    choice = ctx.args.get("number")
    if choice is None:
        lines = [f"{card.name}'s greetings (/greeting N starts with one):"]
        for number, text in enumerate(options):
            if text.strip():
                lines.append(f"  {number}: {_preview(text)}")
        return "\n".join(lines) if len(lines) > 1 else f"{card.name} has no greeting."
    if not choice.isdigit():
        raise CommandError("/greeting takes a greeting's number, e.g. /greeting 1.")
    if ctx.conversation is None:
        raise CommandError("/greeting works in a conversation.")
    stored = await ctx.runtime.start_conversation(
        ctx.scope,
        ctx.conversation,
        user_name=ctx.user_name,
        greeting=int(choice),
        replace=True,
    )
    if stored is None:
        raise CommandError(
            "This conversation has already begun; a greeting starts a new one "
            "(clear this one first)."
        )
    return stored[1].content


def _preview(text: str, limit: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


_WHAT = CommandOption("what", "this persona, or all", choices=("this", "all"))


@hookimpl(trylast=True)
def register_commands(register: Callable[[Command], None]) -> None:
    register(Command("help", "List the commands", show_help))
    register(Command("forget", "Forget me (this persona, or all)", forget, (_WHAT,)))
    register(Command("export", "Export my data as JSON", export, (_WHAT,)))
    register(
        Command(
            "greeting",
            "List the greetings, or start the conversation with greeting N",
            greeting,
            (CommandOption("number", "the greeting's number (0 is the first)"),),
        )
    )
