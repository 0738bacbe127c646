"""Chat commands that plugins register for every front end."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from personae.core.errors import CommandError

if TYPE_CHECKING:
    from personae.core.runtime import Runtime
    from personae.core.types import Scope

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True, slots=True)
class CommandOption:
    """One argument of a command (a slash-command option on Discord)."""

    name: str
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What a command handler receives: who asks, about which persona, and the
    arguments. ``scope`` is derived by the front end from the authenticated user."""

    runtime: Runtime
    scope: Scope
    platform: str
    args: dict[str, str] = field(default_factory=dict)
    confirmed: bool = False
    """True once the user has confirmed a destructive command (a button on
    Discord, a ``confirm`` argument elsewhere)."""
    visible_id: str = ""
    """The persona's visible id (``scope.persona_id`` is its internal key)."""
    conversation: str | None = None
    """The conversation the command was typed in, when the front end has one."""
    user_name: str = "User"
    """How the persona calls the user (for macros in what a command stores)."""

    @property
    def persona_id(self) -> str:
        """The id to show the user."""
        return self.visible_id or self.scope.persona_id


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command answers: text for the user, and optionally a file."""

    text: str
    attachment: tuple[str, bytes] | None = None  # (file name, content)
    needs_confirmation: bool = False


Handler = Callable[[CommandContext], "Awaitable[CommandResult | str] | CommandResult | str"]


@dataclass(frozen=True, slots=True)
class Command:
    """A command named ``name`` (lower case, no slash) that a plugin registers."""

    name: str
    description: str
    handler: Handler
    options: tuple[CommandOption, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"invalid command name {self.name!r}")


class CommandRegistry:
    """The commands registered through ``register_commands``."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def add(self, command: Command) -> None:
        self._commands[command.name] = command

    def get(self, name: str) -> Command | None:
        return self._commands.get(name)

    def all(self) -> list[Command]:
        return sorted(self._commands.values(), key=lambda c: c.name)

    def parse(self, line: str) -> tuple[Command, dict[str, str]]:
        """Parse ``/name arg1 arg2`` or ``/name key=value``; positional arguments
        fill the options in order."""
        parts = line.strip().lstrip("/").split()
        if not parts:
            raise CommandError("Type /help to see the commands.")
        command = self.get(parts[0].lower())
        if command is None:
            raise CommandError(f"Unknown command /{parts[0]}. Type /help to see the commands.")
        args: dict[str, str] = {}
        positional = [p for p in parts[1:] if "=" not in p]
        for part in parts[1:]:
            if "=" in part:
                key, value = part.split("=", 1)
                args[key] = value
        for option, value in zip(command.options, positional, strict=False):
            args.setdefault(option.name, value)
        check_args(command, args)
        return command, args

    async def run(self, command: Command, ctx: CommandContext) -> CommandResult:
        from personae.core.plugins import await_me_maybe

        result: Any = await await_me_maybe(command.handler(ctx))
        return result if isinstance(result, CommandResult) else CommandResult(str(result))


def check_args(command: Command, args: dict[str, str]) -> None:
    """:class:`CommandError` when a required option is missing or a value is not
    one of the option's choices."""
    for option in command.options:
        if option.required and option.name not in args:
            raise CommandError(f"/{command.name} needs {option.name}: {option.description}")
        if option.choices and option.name in args and args[option.name] not in option.choices:
            raise CommandError(
                f"/{command.name} {option.name} must be one of {', '.join(option.choices)}"
            )
