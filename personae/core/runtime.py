"""The persona runtime: a :class:`~personae.core.types.Turn` in, a stream of reply
chunks out.

For each turn the runtime reads what the prompt needs (persona, readable scopes,
recent history, plugin sections), releases the database, streams the LLM's
reply, then stores the user message and the reply in one short transaction.
Turns of one conversation are strictly ordered; different conversations run
concurrently. Slow follow-up work runs in the background after the reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from personae.core.background import BackgroundTasks
from personae.core.card_prompt import card_book, turn_injections
from personae.core.cards import PersonaCard, parse_card_json
from personae.core.clock import Clock
from personae.core.commands import CommandRegistry
from personae.core.context import ContextEngine, PromptPlan, Summary
from personae.core.errors import LLMResponseError, StartupError
from personae.core.greetings import pick_greeting
from personae.core.llm.base import ChatRequest, ChatUsage, ContextWindow, LLMBackend
from personae.core.locks import KeyedLocks
from personae.core.lore_placement import lore_parts, place_depth_entries
from personae.core.macros import MacroContext, render_all
from personae.core.personas import PersonaEntry, PersonaRegistry, avatar_file
from personae.core.plugins import PluginManager, create_plugin_manager
from personae.core.proactive import ProactiveHub
from personae.core.settings import Settings
from personae.core.summaries import Summarizer
from personae.core.turns import ReplyStream, TurnGate
from personae.core.types import PromptSection, Scope, Turn
from personae.storage import Database, HistoryStore, MemoryStore, PersonaStore, UserStore, erase
from personae.storage.followups import FollowUpStore
from personae.storage.history import UNKNOWN
from personae.storage.plugin_state import PluginStateStore
from personae.storage.records import StoredMessage

log = logging.getLogger("personae.runtime")


def _idle_seconds(history: list[StoredMessage]) -> float | None:
    """Seconds since the conversation's last message ({{idle_duration}})."""
    last = history[-1].created_at if history else None
    if last is None:
        return None
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - last).total_seconds())


@dataclass(frozen=True, slots=True)
class Reply:
    """A completed, stored reply."""

    text: str
    persona_id: str
    conversation: str
    user_message_id: int
    reply_message_id: int
    usage: ChatUsage | None = None
    """The token counts the model reported for this reply (None: it reported none)."""
    persona_key: str = ""
    """The internal key of the persona (its memory's ``Scope.persona_id``)."""


class Runtime:
    """One persona runtime: plugins, storage, LLM backend and personas.

    Use as ``async with Runtime(settings) as runtime:`` or call :meth:`start` and
    :meth:`stop`. Nothing in it holds a "current persona": every call names its scope.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        plugins: PluginManager | None = None,
        load_entry_points: bool = True,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self.plugins = plugins or create_plugin_manager(
            settings, load_entry_points=load_entry_points
        )
        self.db = Database(settings.db_url)
        self.users = UserStore()
        self.history = HistoryStore(settings.memory.history_cache_conversations)
        self.memory = MemoryStore()
        self.followups = FollowUpStore()
        self.plugin_state = PluginStateStore()
        self.proactive = ProactiveHub()
        self.personas = PersonaRegistry(PersonaStore())
        self.commands = CommandRegistry()
        self.background = BackgroundTasks(settings.runtime.background_concurrency)
        self.turn_gate = TurnGate(
            settings.runtime.max_concurrent_turns, settings.runtime.max_waiting_turns
        )
        self.context = ContextEngine(summary_tokens=settings.memory.summary_max_tokens)
        self.summaries = Summarizer(self)
        self.backends: dict[str, LLMBackend] = {}
        self.services: dict[str, Any] = {}  # services plugins offer adapters, e.g. "voice"
        self._llm: LLMBackend | None = None
        self._conversations: KeyedLocks[tuple[str, int, str]] = KeyedLocks()
        self._unwindowed: set[str] = set()
        self._uncounted: set[str] = set()
        self.started = False
        self.turns_completed = 0
        self.turns_failed = 0
        self._rng = random.Random()
        self.token_totals = {"prompt": 0, "evaluated": 0, "cached": 0, "completion": 0}
        """Tokens the model reported over all turns (for metrics)."""

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, *, migrate: bool = True) -> None:
        """Connect the database (applying migrations), collect registrations from
        plugins and run their startup hooks."""
        await self.db.connect(migrate=migrate)
        try:
            for _plugin, backend in await self.plugins.collect(
                "register_llm_backends", settings=self.settings
            ):
                self.backends.setdefault(backend.name, backend)
            if self.settings.llm_backend not in self.backends:
                raise StartupError(
                    f"No LLM backend named {self.settings.llm_backend!r} is registered "
                    f"(available: {', '.join(sorted(self.backends)) or 'none'})."
                )
            self._llm = self.backends[self.settings.llm_backend]
            for plugin, card in await self.plugins.collect(
                "register_personas", settings=self.settings
            ):
                if not self.personas.has_system(card.id):
                    self.personas.add_system(card, source=f"plugin:{plugin}")
            for folder in self.settings.persona_dirs:
                self.personas.load_dir(folder)
            for _plugin, command in await self.plugins.collect("register_commands"):
                if self.commands.get(command.name) is None:
                    self.commands.add(command)
            await self.plugins.call_startup("personae_startup", runtime=self)
        except BaseException:
            # Let plugins that did start release what they opened (failures are logged).
            await self.plugins.call("personae_shutdown", runtime=self)
            await self._close_resources()
            raise
        self.started = True

    async def stop(self) -> None:
        """Drain background work, run shutdown hooks, close backends and the database."""
        if not self.started:
            return
        self.started = False
        await self.background.drain(timeout=self.settings.runtime.shutdown_grace_seconds)
        await self.plugins.call("personae_shutdown", runtime=self)
        await self._close_resources()

    async def _close_resources(self) -> None:
        for backend in self.backends.values():
            try:
                await backend.aclose()
            except Exception:
                log.exception("closing LLM backend %s failed", backend.name)
        self.backends.clear()
        await self.db.close()

    @property
    def llm(self) -> LLMBackend:
        if self._llm is None:
            raise RuntimeError("the runtime is not started")
        return self._llm

    # -- turns -------------------------------------------------------------

    def stream(self, turn: Turn) -> ReplyStream:
        """The reply to ``turn`` as a stream of chunks (see :class:`ReplyStream`)."""
        return ReplyStream(self, turn)

    async def reply(self, turn: Turn) -> Reply:
        """Run a turn to completion and return the stored reply."""
        async with self.stream(turn) as stream:
            async for _ in stream:
                pass
        assert stream.reply is not None
        return stream.reply

    async def prompt_sections(
        self,
        turn: Turn,
        persona: PersonaCard,
        scopes: list[Scope],
        history: list[StoredMessage],
    ) -> list[PromptSection]:
        """Gather the sections every plugin contributes for this turn."""
        sections: list[PromptSection] = []
        for plugin, result in await self.plugins.call(
            "prompt_sections",
            turn=turn,
            persona=persona,
            scopes=scopes,
            history=history,
            runtime=self,
        ):
            items = result if isinstance(result, list | tuple) else [result]
            for item in items:
                if isinstance(item, PromptSection):
                    sections.append(item)
                else:
                    log.warning("plugin %r returned a non-PromptSection: %r", plugin, item)
        return sections

    def chat_request(
        self, card: PersonaCard, messages: list[Any], *, on_usage: Any = None
    ) -> ChatRequest:
        """The LLM request for a persona: its own model and options, if it names them."""
        settings = card.settings
        return ChatRequest(
            messages=messages,
            model=settings.model,
            options=dict(settings.options),
            on_usage=on_usage,
        )

    async def context_window(self, card: PersonaCard) -> ContextWindow:
        """The window the persona's model runs with (see ``personae.core.context``).
        A backend that cannot say gets ``ollama.fallback_num_ctx`` (logged once)."""
        settings = card.settings
        window = getattr(self.llm, "context_window", None)
        if window is not None:
            return cast(ContextWindow, await window(settings.model, dict(settings.options)))
        model = settings.model or self.llm.default_model
        if model not in self._unwindowed:
            self._unwindowed.add(model)
            log.warning(
                "LLM backend %s does not say the context window of model %r; prompts are "
                "fitted to ollama.fallback_num_ctx = %d",
                self.llm.name,
                model,
                self.settings.ollama.fallback_num_ctx,
            )
        return ContextWindow(
            model,
            self.settings.ollama.fallback_num_ctx,
            self.settings.ollama.num_predict,
            "fallback",
        )

    def plan_prompt(
        self,
        turn: Turn,
        card: PersonaCard,
        window: ContextWindow,
        sections: list[PromptSection],
        history: list[StoredMessage],
        summaries: list[Summary],
    ) -> PromptPlan:
        """The turn's messages fitted to ``window`` (raises ContextTooSmall), with
        the card's lorebook entries and depth prompt placed (see card_prompt)."""
        lore = self.settings.lorebook
        book = card_book(card)
        injections = turn_injections(
            card,
            user=turn.user_name,
            history=[(m.role, m.content) for m in history],
            text=turn.text,
            now=datetime.now().astimezone(),
            idle_seconds=_idle_seconds(history),
            rng=self._rng,
            scan_depth=lore.scan_depth if book.scan_depth is None else None,
            recursive=lore.recursive or book.recursive_scanning,
            max_recursion_steps=lore.max_recursion_steps,
            budget=lore.budget_tokens,
            count_tokens=self.context.counter(window.model).count,
        )
        plan = self.context.plan(
            (turn.persona_id, turn.user_id, turn.conversation),
            card,
            window,
            user=turn.user_name,
            text=turn.text,
            history=history,
            sections=sections,
            summaries=summaries,
            extra_parts=lore_parts(injections),
        )
        return place_depth_entries(plan, injections)

    async def _run_turn(self, turn: Turn, stream: ReplyStream) -> AsyncIterator[str]:
        async with self._conversations.hold((turn.persona_id, turn.user_id, turn.conversation)):
            entry = await self.personas.entry(turn.persona_id, viewer=turn.user_id)
            card, turn = entry.card, turn.keyed(entry.key)  # memory lives under the key
            scope = turn.scope
            scopes = await self.personas.readable_scopes(card, scope)
            limit = self.settings.memory.history_messages
            # The history kept in memory is checked against the id of the last
            # stored message. On SQLite that id is read at once, on this thread;
            # otherwise (a round trip) the model starts on the kept history while
            # the id is read, and if another process added to the conversation the
            # reply restarts (before any chunk is out) on the stored history.
            history = self.history.cached_recent(scope, turn.conversation, limit)
            check: asyncio.Future[int | None] | None = None
            if history is not None:
                last = self.history.last_id_now(scope, turn.conversation)
                if last is UNKNOWN:
                    check = asyncio.ensure_future(self.history.last_id(scope, turn.conversation))
                elif last != (history[-1].id if history else None):
                    history = None
            if history is None:
                history = await self.history.recent(scope, turn.conversation, limit)
            # Sections are gathered once: plugins may act on them (a woven question
            # is recorded as asked), and they hold across a restart.
            sections = await self.prompt_sections(turn, card, scopes, history)
            window = await self.context_window(card)
            summaries = await self.summaries.stored(scope, turn.conversation)
            chunks: list[str] = []
            sent: list[tuple[PromptPlan, list[ChatUsage]]] = []
            try:
                reply_chunks = self._model_reply(
                    turn, card, sections, history, check, window, summaries, sent
                )
                async with contextlib.aclosing(reply_chunks):
                    async for chunk in reply_chunks:
                        chunks.append(chunk)
                        yield chunk
                text = "".join(chunks).strip()
                if not text:
                    raise LLMResponseError("The model returned an empty reply; try again.")
            except BaseException:
                self.turns_failed += 1
                raise
            finally:
                if check is not None:
                    check.cancel()
                    with contextlib.suppress(BaseException):
                        await check
            asked, said = await self.history.append_exchange(
                scope, turn.conversation, turn.text, text
            )
            plan, usages = sent[-1]
            usage = usages[-1] if usages else None
            self._count_tokens(plan, usage)
            reply = Reply(
                text, turn.persona_id, turn.conversation, asked, said, usage, scope.persona_id
            )
            stream.reply = reply
            self.turns_completed += 1
            if plan.summarise_through is not None:
                self.summaries.spawn(
                    scope, turn.conversation, card, plan, (turn.text, text), user=turn.user_name
                )
        self.background.spawn(
            lambda: self.plugins.call("reply_complete", turn=turn, reply=reply, runtime=self),
            name=f"reply_complete:{turn.persona_id}",
        )

    async def _model_reply(
        self,
        turn: Turn,
        card: PersonaCard,
        sections: list[PromptSection],
        history: list[StoredMessage],
        check: asyncio.Future[int | None] | None,
        window: ContextWindow,
        summaries: list[Summary],
        sent: list[tuple[PromptPlan, list[ChatUsage]]],
    ) -> AsyncGenerator[str, None]:
        """The model's reply to the prompt built on ``history``. With ``check`` (the
        id of the last stored message, being read), the first chunk waits for it;
        when ``history`` turns out stale, the reply starts over on the stored one.
        Each prompt sent and the counts reported for it are added to ``sent``."""
        plan = self.plan_prompt(turn, card, window, sections, history, summaries)
        usages: list[ChatUsage] = []
        sent.append((plan, usages))
        request = self.chat_request(card, plan.messages, on_usage=usages.append)
        reply_chunks = self.llm.stream_chat(request)
        try:
            async for chunk in reply_chunks:
                if check is not None:
                    if await check != (history[-1].id if history else None):
                        break
                    check = None
                yield chunk
            else:
                return
        finally:
            close = getattr(reply_chunks, "aclose", None)
            if close is not None:
                await close()
        limit = self.settings.memory.history_messages
        stored = await self.history.recent(turn.scope, turn.conversation, limit)
        again = self._model_reply(turn, card, sections, stored, None, window, summaries, sent)
        async with contextlib.aclosing(again):
            async for chunk in again:
                yield chunk

    async def start_conversation(
        self,
        scope: Scope,
        conversation: str,
        *,
        user_name: str,
        greeting: int | None = None,
        replace: bool = False,
    ) -> tuple[int, StoredMessage] | None:
        """Open a conversation with the persona's greeting (``greeting`` numbers
        it: 0 is ``first_mes``, 1... the alternate greetings; None lets the persona's
        setting choose), macros rendered, stored as its first assistant message.
        ``replace`` swaps a greeting nobody has answered yet. None when the
        conversation has already begun or the persona has no greeting; else the
        greeting's number and the stored message.
        :class:`~personae.core.errors.CommandError` for a greeting it does not have."""
        card = (await self.personas.by_key(scope.persona_id, viewer=scope.user_id)).card
        picked = pick_greeting(card, greeting, self._rng)
        if picked is None:
            return None
        number, text = picked
        context = MacroContext(
            char=card.name, user=user_name, now=datetime.now().astimezone(), rng=self._rng
        )
        rendered = render_all(text, context).strip()
        async with self._conversations.hold((scope.persona_id, scope.user_id, conversation)):
            stored = await self.history.start_conversation(
                scope, conversation, rendered, replace=replace
            )
        return None if stored is None else (number, stored)

    def _count_tokens(self, plan: PromptPlan, usage: ChatUsage | None) -> None:
        """Calibrate the model's token estimate and add to the totals; a backend
        that reported no counts is logged (once per model) and the estimate stays."""
        model = plan.window.model
        if usage is None or usage.prompt_tokens is None:
            if model not in self._uncounted:
                self._uncounted.add(model)
                log.warning(
                    "model %r reported no token counts; prompts are fitted with the "
                    "uncalibrated estimate (%.1f characters a token)",
                    model,
                    self.context.counter(model).chars_per_token,
                )
            return
        self.context.observe(model, plan.messages, usage)
        totals = self.token_totals
        totals["prompt"] += usage.prompt_tokens
        totals["evaluated"] += usage.evaluated_tokens or 0
        totals["cached"] += usage.cached_tokens or 0
        totals["completion"] += usage.completion_tokens or 0
        if usage.prompt_tokens > plan.window.num_ctx:
            log.error(
                "model %r counted %d prompt tokens, over num_ctx = %d: the estimate was "
                "%d; Ollama cut the prompt",
                model,
                usage.prompt_tokens,
                plan.window.num_ctx,
                plan.estimated_tokens,
            )

    async def clear_conversation(self, scope: Scope, key: str) -> int:
        """Delete one conversation: its messages, its summaries, its trim point."""
        count = await self.history.clear(scope, key)
        await self.summaries.clear(scope, key)
        return count

    # -- the data contract -------------------------------------------------

    async def _persona_key(self, user_id: int, persona_id: str | None) -> str | None:
        """The key of the persona ``persona_id`` names for the user (a key, or an id
        the user cannot see, stands for itself): plugins store by key."""
        if persona_id is None:
            return None
        return (await self.personas.scope(persona_id, user_id)).persona_id

    async def export_user_data(self, user_id: int, persona_id: str | None = None) -> dict[str, Any]:
        """Everything every plugin stores about a user (one persona, or all).
        Plugins name personas by key; ``personas`` maps each key the user can see
        to its visible id."""
        key = await self._persona_key(user_id, persona_id)
        results = await self.plugins.call_strict(
            "export_user_data", user_id=user_id, persona_id=key, runtime=self
        )
        names = {entry.key: entry.id for entry in await self.personas.list(user_id)}
        return {
            "format": "personae.export/1",
            "user_id": user_id,
            "persona_id": persona_id,
            "exported_at": datetime.now(UTC).isoformat(),
            "personas": names,
            "plugins": {name: data for name, data in results},
        }

    async def forget_user(self, user_id: int, persona_id: str | None = None) -> dict[str, int]:
        """Delete everything every plugin stores about a user (one persona, or all),
        then the user's memory, history, follow-up and plugin-state rows no loaded
        plugin claimed (``"storage"`` in the counts). Background work in flight is
        finished first so it cannot write back afterwards. The account, its custom
        personas and its tokens stay. Returns the count each plugin deleted."""
        await self.background.drain(timeout=self.settings.runtime.shutdown_grace_seconds)
        key = await self._persona_key(user_id, persona_id)
        results = await self.plugins.call_strict(
            "forget_user", user_id=user_id, persona_id=key, runtime=self
        )
        counts = {name: int(count) for name, count in results}
        left = await erase.user_rows(user_id, key)  # e.g. a plugin that is not loaded now
        if left:
            counts["storage"] = left
        return counts

    async def forget_persona(self, persona_key: str) -> dict[str, int]:
        """Delete everything stored under a persona's key, for every user: each
        plugin's ``forget_user`` for each user with rows under it, then whatever
        rows are left. Background work in flight is finished first. Returns the
        count each plugin deleted (``"storage"``: rows no plugin removed)."""
        await self.background.drain(timeout=self.settings.runtime.shutdown_grace_seconds)
        counts: dict[str, int] = {}
        for user_id in await erase.users_with_rows(persona_key):
            for name, count in await self.plugins.call_strict(
                "forget_user", user_id=user_id, persona_id=persona_key, runtime=self
            ):
                counts[name] = counts.get(name, 0) + int(count)
        left = await erase.persona_rows(persona_key)
        if left:
            counts["storage"] = left
        return counts

    async def delete_persona(self, entry: PersonaEntry) -> bool:
        """Delete a stored persona, its avatar file and everything stored under its
        key for every user. A stored system card that overrides a built-in or
        card-folder persona of its id goes, and that persona (and its memory)
        stays. False when ``entry`` is not stored (a built-in persona)."""
        if entry.source != "database" or not await self.personas.store.delete(entry.key):
            return False
        avatar = avatar_file(self.settings.data_dir, entry.card)
        if avatar is not None:
            await asyncio.to_thread(avatar.unlink, missing_ok=True)
        if not self.personas.has_system(entry.key):
            await self.forget_persona(entry.key)
        return True

    async def delete_user(self, user_id: int) -> dict[str, int]:
        """Delete an account and everything of it: its custom personas (with what
        every user has stored under them and their avatars), everything every
        plugin stores about the user, and every row that names the user
        (identities, link codes, tokens, sessions, the user). Returns counts."""
        counts: dict[str, int] = {}
        for stored in await self.personas.store.owned_by(user_id):
            entry = PersonaEntry(
                parse_card_json(stored.card), "database", user_id, stored.shared, stored.key
            )
            if await self.delete_persona(entry):
                counts["personas"] = counts.get("personas", 0) + 1
        for name, count in (await self.forget_user(user_id)).items():
            counts[name] = counts.get(name, 0) + count
        counts["account"] = await erase.account_rows(user_id)
        return counts
