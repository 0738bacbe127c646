"""Helpers for tests of plugins: run a turn or a command against a started runtime
and look at what reached the model and what was stored.

Every helper takes the runtime explicitly and names the persona and the user it
acts for; nothing here holds a "current" persona::

    result = await run_turn(personae_runtime, "thank you, that was lovely", persona="sage")
    assert "feels warm" in result.system_prompt
    assert await plugin_state(personae_runtime, "mood", persona="sage") == {"level": 1}

Users are named by a string (resolved to an internal id on first use, on the
``"test"`` platform) or given as an internal id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from personae.core.commands import CommandContext, CommandResult
from personae.core.types import Scope, Turn

if TYPE_CHECKING:
    from personae.core.runtime import Reply, Runtime
    from personae.storage.records import MemoryRecord, StoredMessage
    from personae.testing.fake_ollama import FakeOllama

TEST_PLATFORM = "test"
DEFAULT_USER = "tester"

_fakes: dict[str, FakeOllama] = {}


def register_fake(fake: FakeOllama) -> None:
    """Let the helpers find ``fake`` from a runtime whose ``ollama.host`` is its URL.
    The ``personae_fake_ollama`` fixture does this for you."""
    _fakes[fake.url.rstrip("/")] = fake


def unregister_fake(fake: FakeOllama) -> None:
    _fakes.pop(fake.url.rstrip("/"), None)


def fake_for(runtime: Runtime) -> FakeOllama:
    """The fake Ollama the runtime talks to (registered with :func:`register_fake`)."""
    host = runtime.settings.ollama.host.rstrip("/")
    try:
        return _fakes[host]
    except KeyError:
        raise LookupError(
            f"no FakeOllama is registered for {host}; use the personae_fake_ollama "
            "fixture, call register_fake(fake), or pass fake= explicitly"
        ) from None


@dataclass(frozen=True, slots=True)
class TurnResult:
    """One completed turn: the stored reply and the request that reached the model."""

    reply: Reply
    model: str
    """The model the request named."""
    messages: list[dict[str, Any]]
    """The exact messages the model received, system prompt first."""
    options: dict[str, Any] = field(default_factory=dict)
    """The model options the request carried."""

    @property
    def text(self) -> str:
        return self.reply.text

    @property
    def system_prompt(self) -> str:
        """Every system message, joined: the card and stable sections (first), the
        conversation summary, and this turn's plugin instructions, memory and
        post-history instructions (the one after the history)."""
        return "\n\n".join(
            str(m.get("content") or "") for m in self.messages if m.get("role") == "system"
        )

    @property
    def prompt_text(self) -> str:
        """Every message's content, joined: handy for ``"..." in result.prompt_text``."""
        return "\n\n".join(str(m.get("content") or "") for m in self.messages)


async def user_id(runtime: Runtime, user: str | int = DEFAULT_USER) -> int:
    """The internal id of a test user: ``user`` itself when it is an int, else the
    user named ``user`` on the ``"test"`` platform (created on first use)."""
    if isinstance(user, int):
        return user
    return int(await runtime.users.resolve(TEST_PLATFORM, user, user))


async def scope(
    runtime: Runtime, persona: str | None = None, user: str | int = DEFAULT_USER
) -> Scope:
    """The scope of ``persona`` (default: ``settings.default_persona``) and ``user``:
    the persona the id names for the user, by its internal key."""
    uid = await user_id(runtime, user)
    return await runtime.personas.scope(persona or runtime.settings.default_persona, uid)


async def run_turn(
    runtime: Runtime,
    text: str,
    *,
    persona: str | None = None,
    user: str | int = DEFAULT_USER,
    conversation: str = "test",
    fake: FakeOllama | None = None,
    wait_for_background: bool = True,
) -> TurnResult:
    """Send ``text`` to ``persona`` as ``user`` and return the reply with the request
    that reached the fake Ollama. By default it also waits for the background work
    the turn started (``reply_complete`` hooks), so their effects can be checked."""
    fake = fake or fake_for(runtime)
    where = await scope(runtime, persona, user)
    seen = len(fake.requests_to("/api/chat"))
    turn = Turn(
        where.user_id,
        persona or runtime.settings.default_persona,
        text,
        conversation=conversation,
        platform=TEST_PLATFORM,
        user_name=user if isinstance(user, str) else DEFAULT_USER,
    )
    reply = await runtime.reply(turn)
    # The turn's own request: streamed, its newest user message the turn's (background
    # work, e.g. profile learning, may ask the model too).
    chats = [r.json for r in fake.requests_to("/api/chat")[seen:] if isinstance(r.json, dict)]
    if wait_for_background:
        await drain(runtime)
    own = [body for body in chats if body.get("stream", True) and _ends_with(body, text)]
    if not own:
        raise AssertionError("the turn finished without its request reaching the fake Ollama")
    body = own[-1]
    return TurnResult(
        reply=reply,
        model=str(body.get("model")),
        messages=list(body.get("messages") or []),
        options=dict(body.get("options") or {}),
    )


def _ends_with(body: dict[str, Any], text: str) -> bool:
    """Whether the request's newest user message is ``text`` (the turn's own system
    message, with recalled memory, instructions and post-history instructions, may
    follow it)."""
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    return bool(users) and users[-1] == {"role": "user", "content": text}


async def run_command(
    runtime: Runtime,
    line: str,
    *,
    persona: str | None = None,
    user: str | int = DEFAULT_USER,
    confirm: bool = False,
    conversation: str = "test",
) -> CommandResult:
    """Run a chat command (``"/mood warm"``) as a front end would, in
    ``conversation``. ``confirm`` answers yes when the command asks for confirmation."""
    where = await scope(runtime, persona, user)
    command, args = runtime.commands.parse(line)
    shown = persona or runtime.settings.default_persona
    name = user if isinstance(user, str) else DEFAULT_USER

    def context(confirmed: bool) -> CommandContext:
        return CommandContext(
            runtime,
            where,
            TEST_PLATFORM,
            args,
            confirmed,
            visible_id=shown,
            conversation=conversation,
            user_name=name,
        )

    result = await runtime.commands.run(command, context(False))
    if result.needs_confirmation and confirm:
        result = await runtime.commands.run(command, context(True))
    return result


async def drain(runtime: Runtime, timeout: float = 10.0) -> None:
    """Wait for the runtime's background work (``reply_complete`` hooks) to finish."""
    if not await runtime.background.drain(timeout=timeout):
        raise AssertionError(f"background work did not finish within {timeout:g}s")


async def stored_messages(
    runtime: Runtime,
    *,
    persona: str | None = None,
    user: str | int = DEFAULT_USER,
    conversation: str = "test",
    limit: int = 500,
) -> list[StoredMessage]:
    """The messages stored for one conversation of ``persona`` and ``user``, oldest first."""
    where = await scope(runtime, persona, user)
    return await runtime.history.recent(where, conversation, limit)


async def memory_items(
    runtime: Runtime, *, persona: str | None = None, user: str | int = DEFAULT_USER
) -> list[MemoryRecord]:
    """What ``persona`` remembers about ``user`` (the profile memory items)."""
    return await runtime.memory.list(await scope(runtime, persona, user))


async def plugin_state(
    runtime: Runtime, plugin: str, *, persona: str | None = None, user: str | int = DEFAULT_USER
) -> dict[str, Any]:
    """Every key ``plugin`` stored with ``runtime.plugin_state`` for this scope."""
    return await runtime.plugin_state.items(await scope(runtime, persona, user), plugin)
