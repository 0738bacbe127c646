"""The hooks personae calls. Plugins implement them with ``@personae.hookimpl``.

Every hook may be implemented as a plain function or as an ``async def``: the
runtime awaits whatever comes back (see :func:`personae.core.plugins.await_me_maybe`).
A plugin that raises in a hook is logged with its name and skipped; the user's
reply is never lost to a plugin failure (startup hooks are the exception: a
failure there stops the runtime with a :class:`~personae.core.errors.StartupError`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    from personae.core.cards import PersonaCard
    from personae.core.commands import Command
    from personae.core.llm.base import LLMBackend
    from personae.core.runtime import Reply, Runtime
    from personae.core.settings import Settings
    from personae.core.types import PromptSection, Scope, Turn
    from personae.plugins.voice.engines.base import TTSEngine
    from personae.storage.records import StoredMessage

hookspec = HookspecMarker("personae")
hookimpl = HookimplMarker("personae")


@hookspec
def personae_startup(runtime: Runtime) -> None:
    """Called once when the runtime starts, after the database is connected and
    personas, backends and commands are registered. Open resources here (clients,
    worker tasks). An exception stops the start with a StartupError naming the plugin."""


@hookspec
def personae_shutdown(runtime: Runtime) -> None:
    """Called once when the runtime stops, after background work has been drained
    and before the database is closed. Release what ``personae_startup`` opened.
    Exceptions are logged and do not stop the others."""


@hookspec
def register_personas(register: Callable[[PersonaCard], None], settings: Settings) -> None:
    """Called at startup. Call ``register(card)`` for each system persona the
    plugin provides (a :class:`~personae.core.cards.PersonaCard`). The first
    registration of an id wins; the built-in personas register ``trylast``, so a
    plugin can replace one by registering a card with the same id."""


@hookspec
def register_llm_backends(register: Callable[[LLMBackend], None], settings: Settings) -> None:
    """Called at startup. Call ``register(backend)`` with an object implementing
    :class:`~personae.core.llm.base.LLMBackend`. The runtime uses the backend whose
    ``name`` matches ``settings.llm_backend`` (``"ollama"`` by default); the first
    registration of a name wins (the built-in Ollama backend registers ``trylast``)."""


@hookspec
def register_tts_engines(register: Callable[[TTSEngine], None], settings: Settings) -> None:
    """Called once at startup by the voice plugin (when it is loaded). Call
    ``register(engine)`` with an object implementing
    :class:`~personae.plugins.voice.engines.base.TTSEngine` (``name``, ``cloud``,
    ``can_clone``, ``list_voices``, ``synthesize``, ``clone_voice``, ``delete_voice``,
    ``aclose``). Voices are named ``"<engine name>:<voice>"``; the first registration
    of a name wins (the built-in espeak-ng and ElevenLabs engines register ``trylast``).
    An exception stops the start with a StartupError naming the plugin."""


@hookspec
def register_commands(register: Callable[[Command], None]) -> None:
    """Called at startup. Call ``register(command)`` with a
    :class:`~personae.core.commands.Command`; every front end offers it (``/name``
    in the terminal chat, slash commands on Discord, the command endpoint over HTTP).
    The first registration of a name wins (built-in commands register ``trylast``)."""


@hookspec
def prompt_sections(
    turn: Turn,
    persona: PersonaCard,
    scopes: list[Scope],
    history: list[StoredMessage],
    runtime: Runtime,
) -> PromptSection | list[PromptSection] | None:
    """Called for every turn while its prompt is built, before the LLM call.

    ``persona`` is the turn's persona card; ``history`` the recent messages of the
    conversation that the prompt carries (oldest first, already read: do not read
    them again). ``scopes`` are the (persona, user) scopes this turn may read: the
    turn's own scope first, then those its persona's sharing group opens. Return a
    :class:`~personae.core.types.PromptSection` (or a list, or None). Sections of
    kind ``"memory"`` are wrapped as delimited data the model is told never to obey;
    ``"instructions"`` sections are trusted text. Keep this fast: it is on the reply path."""


@hookspec
def reply_complete(turn: Turn, reply: Reply, runtime: Runtime) -> None:
    """Called after a reply has been delivered and stored, as background work off
    the reply path (bounded concurrency, drained on shutdown). ``reply`` carries the
    text and the stored message ids. Slow work (learning, speech) belongs here."""


@hookspec
def export_user_data(user_id: int, persona_id: str | None, runtime: Runtime) -> Any:
    """Return everything this plugin stores about ``user_id`` (for one persona, by
    its internal key ``Scope.persona_id``, or all when ``persona_id`` is None) as
    JSON-able data, or None if it stores nothing.
    The runtime gathers the results under each plugin's name."""


@hookspec
def forget_user(user_id: int, persona_id: str | None, runtime: Runtime) -> int | None:
    """Delete everything this plugin stores about ``user_id`` (for one persona, or
    all when ``persona_id`` is None). ``persona_id`` is the persona's internal key
    (``Scope.persona_id``). Also called for every user with data under a persona
    when the persona is deleted, and for a user whose account is deleted. Return
    how many records were deleted. A failure is reported to the caller:
    forgetting must be complete or visibly incomplete."""
