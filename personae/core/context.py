"""Fitting every prompt to the model's context window, and keeping its prefix.

A turn's request must fit ``num_ctx`` minus the reply's reserve, whatever the
card's size, and should share the longest prefix with the previous turn's
request, because Ollama evaluates only what follows the common prefix. So:

- tokens are estimated per model (:class:`TokenCounter`), calibrated from the
  ``prompt_eval_count`` Ollama reports, with a safety margin;
- the card and the new message must fit, or :class:`ContextTooSmall` says so;
- the other parts (:class:`BudgetPart`: plugin instructions, the summary,
  recalled memory, lorebook entries ...) are fitted by priority, item by item;
- the history gets what is left, and is trimmed in blocks: a per-conversation
  trim point that moves only forward, dropping :data:`BLOCK` of the history's
  budget at once, so the prefix holds for many turns. Shortly before a block
  falls out, its summary is prepared in the background, so the summary and the
  trim point change on the same turn.

See docs/context.md.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from personae.core.cache import keep_recent
from personae.core.cards import PersonaCard
from personae.core.errors import ContextTooSmall
from personae.core.llm.base import ChatUsage, ContextWindow
from personae.core.prompt import (
    MEMORY_CLOSE,
    card_text,
    layout,
    memory_header,
    memory_item,
    memory_lines,
    post_history_text,
    render_instructions,
    render_summary,
)
from personae.core.tokens import PER_MESSAGE, TokenCounter
from personae.core.types import ChatMessage, PromptSection
from personae.storage.records import StoredMessage

log = logging.getLogger("personae.context")

BLOCK = 0.65
"""The share of the history's budget dropped at once when the history overflows."""
PREPARE = 1 - BLOCK / 2
"""When the history fills this share of its budget, the next block's summary is
prepared (in the background) so it is ready when the block falls out."""
HISTORY_FLOOR = 0.25
"""The share of the room the history keeps before optional parts are fitted."""
INSTRUCTIONS_PRIORITY = 10
SUMMARY_PRIORITY = 20
MEMORY_PRIORITY = 30


@dataclass(frozen=True, slots=True)
class BudgetPart:
    """One part of a prompt that competes for the window.

    ``items`` are the part's units, most important first; when the window is
    full the part keeps a prefix of them (the least important are cut first).
    ``header``/``footer`` are counted once when any item is kept. Parts are
    fitted by ``priority``, lowest first, so the highest priority is cut first.
    A ``required`` part must fit whole, or the prompt is not sent.
    ``placement`` is "prefix" (the first system message, with the card) or
    "turn" (the system message after the history); a part with another placement
    is only budgeted, and placed by the caller (at-depth lorebook entries)."""

    name: str
    items: tuple[str, ...]
    priority: int
    placement: str = "turn"
    header: str = ""
    footer: str = ""
    required: bool = False
    order: int = 100

    reverse: bool = False
    """Render the kept items last-first (lorebook entries: the most important is
    kept first and placed last, nearest the new message)."""

    def render(self, kept: Sequence[str]) -> str:
        items = list(reversed(kept)) if self.reverse else list(kept)
        return "\n".join(part for part in (self.header, *items, self.footer) if part)


@dataclass(slots=True)
class FittedPart:
    part: BudgetPart
    kept: tuple[str, ...]
    tokens: int


def fit_parts(parts: Sequence[BudgetPart], room: int, counter: TokenCounter) -> list[FittedPart]:
    """Keep what fits in ``room`` tokens, part by part in priority order and
    item by item within a part. Raises ValueError when a required part does not
    fit (the caller turns it into a :class:`ContextTooSmall`)."""
    fitted: list[FittedPart] = []
    used = 0
    for part in sorted(parts, key=lambda p: p.priority):
        wrap = counter.count(part.header) + counter.count(part.footer) + 2
        kept: list[str] = []
        cost = 0
        for item in part.items:
            step = counter.count(item) + 1 + (wrap if not kept else 0)
            if used + cost + step > room:
                if part.required:
                    raise ValueError(part.name)
                break
            kept.append(item)
            cost += step
        if kept:
            fitted.append(FittedPart(part, tuple(kept), cost))
            used += cost
    return fitted


def section_part(section: PromptSection, card: PersonaCard, *, user: str) -> BudgetPart:
    """A plugin's section as a budgeted part: a memory section item by item
    (delimited as data), an instruction section whole."""
    if section.kind == "memory":
        return BudgetPart(
            section.name,
            tuple(memory_item(line) for line in memory_lines(section)),
            MEMORY_PRIORITY if section.priority is None else section.priority,
            section.placement,
            header=memory_header(section, user=user, preamble=False),  # the rule: card_text
            footer=MEMORY_CLOSE,
            order=section.order,
        )
    return BudgetPart(
        section.name,
        (render_instructions(section, card, user=user),),
        INSTRUCTIONS_PRIORITY if section.priority is None else section.priority,
        section.placement,
        order=section.order,
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """A stored conversation summary: what was said up to message ``through_id``."""

    through_id: int
    text: str


@dataclass(slots=True)
class PromptPlan:
    """One turn's request as fitted to the window."""

    messages: list[ChatMessage]
    window: ContextWindow
    estimated_tokens: int
    history: list[StoredMessage]
    summary: Summary | None
    parts: dict[str, int] = field(default_factory=dict)
    """Items kept per budgeted part."""
    stable: int = 0
    """How many of ``messages`` lead up to the end of the history (the part the
    next turn's request starts with too)."""
    summarise_through: int | None = None
    """When set, the messages up to this id should be folded into the summary now
    (in the background): the next block is about to fall out, or fell out."""
    summary_context: list[ChatMessage] = field(default_factory=list)
    """What the summary call starts with: the card, the summary in use and the
    history that holds the messages to summarise (the start of ``messages`` when
    the block is still in the window, so the model's prompt cache serves it)."""
    summary_needs: int = 0
    """How many of ``summary_context`` hold what must be summarised (the rest
    may be left out to fit the window)."""


ConversationKey = tuple[str, int, str]


@dataclass(slots=True)
class _Trim:
    start: int
    """The first message id inside the window."""
    prepared: int | None = None
    """The start the next block's trim will move to, its summary requested."""


class ContextEngine:
    """Fits prompts to windows; one per runtime. Holds each model's token
    counter and each conversation's trim point (the trim points of the
    ``max_conversations`` most recently active conversations)."""

    def __init__(self, *, summary_tokens: int = 300, max_conversations: int = 10_000) -> None:
        self.summary_tokens = summary_tokens
        self._counters: dict[str, TokenCounter] = {}
        self._trims: OrderedDict[ConversationKey, _Trim] = OrderedDict()
        self._max = max_conversations

    def counter(self, model: str) -> TokenCounter:
        counter = self._counters.get(model)
        if counter is None:
            counter = self._counters[model] = TokenCounter()
        return counter

    def observe(self, model: str, messages: Sequence[ChatMessage], usage: ChatUsage) -> None:
        """Calibrate ``model``'s counter from a finished call's counts."""
        self.counter(model).observe(messages, usage)

    def forget(self, user_id: int, persona_id: str | None = None, key: str | None = None) -> None:
        """Drop trim points (after a conversation was cleared or forgotten)."""
        for k in [
            k
            for k in self._trims
            if k[1] == user_id and persona_id in (None, k[0]) and key in (None, k[2])
        ]:
            del self._trims[k]

    # -- planning ----------------------------------------------------------------

    def plan(
        self,
        conversation: ConversationKey,
        card: PersonaCard,
        window: ContextWindow,
        *,
        user: str,
        text: str,
        history: Sequence[StoredMessage],
        sections: Sequence[PromptSection] = (),
        summaries: Sequence[Summary] = (),
        extra_parts: Sequence[BudgetPart] = (),
    ) -> PromptPlan:
        """The messages for one turn, fitted to ``window``. ``summaries`` are the
        conversation's stored summaries (any order); ``extra_parts`` more budgeted
        parts (lorebook entries). Raises :class:`ContextTooSmall` when the card and
        the new message alone do not fit."""
        counter = self.counter(window.model)
        room = window.prompt_tokens - counter.margin(window.num_ctx)
        card_part = card_text(card, user=user)
        post = post_history_text(card, user=user)
        fixed = counter.message(card_part) + counter.message(text) + PER_MESSAGE
        fixed += counter.count(post) + 2 if post else 0
        if fixed > room:
            self._too_small(card, window, counter, card_part, post, text, room)
        trim = self._trim_state(conversation, summaries, history)
        start_before = trim.start
        window_history = [m for m in history if m.id >= trim.start]
        free = room - fixed
        # The summary's room is kept whether or not there is one yet, so the
        # history's budget does not jump when the first one arrives.
        reserve = 0
        if self.summary_tokens > 0:
            reserve = min(self.summary_tokens + 80 + PER_MESSAGE, free // 4)
        floor = min(
            int(free * HISTORY_FLOOR),
            sum(counter.message(m.content) for m in window_history[-2:]),
        )
        parts = [section_part(s, card, user=user) for s in sections if s.text.strip()]
        parts.extend(extra_parts)
        fitted = fit_parts(parts, free - reserve - floor, counter)
        budget = free - reserve - sum(f.tokens for f in fitted)
        kept, summarise = self._fit_history(conversation, trim, window_history, budget, counter)
        summary_before = _newest_before(summaries, start_before) if reserve else None
        summary = _newest_before(summaries, trim.start) if reserve else None
        summary_text = None
        if summary is not None:
            limit = int((reserve - 80 - PER_MESSAGE) * counter.chars_per_token)
            text_of = summary.text if len(summary.text) <= limit else _cut(summary.text, limit)
            summary_text = render_summary(text_of, user=user) if text_of else None
        messages = self._assemble(fitted, card_part, post, kept, text, summary_text)
        context: list[ChatMessage] = []
        needs = 0
        if summarise is not None:
            earlier = summary_text if summary is summary_before else None
            if summary_before is not None and earlier is None:
                earlier = render_summary(summary_before.text, user=user)
            context = layout(
                system=[messages[0].content],
                summary=earlier,
                history=window_history,
                turn=[],
                text="",
            )[:-1]
            needs = len(context) - len(window_history)
            needs += next(i for i, m in enumerate(window_history) if m.id == summarise) + 1
        return PromptPlan(
            messages=messages,
            window=window,
            estimated_tokens=counter.messages(messages),
            history=kept,
            summary=summary if summary_text else None,
            parts={f.part.name: len(f.kept) for f in fitted},
            stable=1 + (1 if summary_text else 0) + len(kept),
            summarise_through=summarise,
            summary_context=context,
            summary_needs=needs,
        )

    def _assemble(
        self,
        fitted: list[FittedPart],
        card_part: str,
        post: str,
        history: list[StoredMessage],
        text: str,
        summary_text: str | None,
    ) -> list[ChatMessage]:
        ordered = sorted(fitted, key=lambda f: (f.part.order, f.part.name))
        system = [card_part]
        turn: list[str] = []
        for fitted_part in ordered:
            rendered = fitted_part.part.render(fitted_part.kept)
            if fitted_part.part.placement == "prefix":
                system.append(rendered)
            elif fitted_part.part.placement == "turn":
                turn.append(rendered)
            # other placements ("depth") are placed by the caller from plan.parts
        return layout(
            system=system, summary=summary_text, history=history, turn=turn, text=text, after=post
        )

    def _trim_state(
        self, key: ConversationKey, summaries: Sequence[Summary], history: Sequence[StoredMessage]
    ) -> _Trim:
        trim = self._trims.get(key)
        if trim is not None and history and trim.start > history[-1].id + 1:
            trim = None  # the conversation was cleared elsewhere and started again
        if trim is None:
            last = history[-1].id if history else None
            newest = max(
                (s.through_id for s in summaries if last is None or s.through_id < last),
                default=0,
            )
            trim = _Trim(start=newest + 1 if newest else 0)
        keep_recent(self._trims, key, trim, self._max)
        return trim

    def _fit_history(
        self,
        key: ConversationKey,
        trim: _Trim,
        history: list[StoredMessage],
        budget: int,
        counter: TokenCounter,
    ) -> tuple[list[StoredMessage], int | None]:
        """The history inside the window, and the id through which a summary
        should be prepared now (None: none). Moves the trim point by a block when
        the history overflows ``budget``."""
        costs = [counter.message(m.content) for m in history]
        total = sum(costs)
        block = max(1, int(budget * BLOCK))
        if total > budget:
            cut = None
            if trim.prepared is not None:
                after = sum(c for m, c in zip(history, costs, strict=True) if m.id >= trim.prepared)
                if after <= budget:
                    cut = trim.prepared  # its summary was asked for: it is (nearly) ready
            unsummarised = None
            if cut is None:
                cut = _cut_point(history, costs, max(block, total - (budget - block)))
                dropped = [m for m in history if m.id < cut]
                unsummarised = dropped[-1].id if dropped and trim.prepared is None else None
            trim.start, trim.prepared = cut, None
            return [m for m in history if m.id >= cut], unsummarised
        growth = sum(costs[-2:])  # what one more exchange adds, about
        soon = total > budget * PREPARE or total + 2 * growth > budget
        whole_block = sum(costs[:-2]) >= block  # a summary per block, not per exchange
        if soon and whole_block and trim.prepared is None and len(history) > 2:
            cut = _cut_point(history[:-2], costs[:-2], block)  # keep the last exchange
            dropped = [m for m in history if m.id < cut]
            if dropped and len(dropped) < len(history):
                trim.prepared = cut
                return history, dropped[-1].id
        return history, None

    def _too_small(
        self,
        card: PersonaCard,
        window: ContextWindow,
        counter: TokenCounter,
        card_part: str,
        post: str,
        text: str,
        room: int,
    ) -> None:
        card_tokens = counter.message(card_part) + (counter.count(post) if post else 0)
        if card_tokens + PER_MESSAGE * 2 > room:
            message = (
                f"The persona {card.name!r} does not fit its model's context window: its "
                f"card needs about {card_tokens} tokens, and {window.model} runs with "
                f"num_ctx = {window.num_ctx} tokens, {window.reply_tokens} of them kept "
                f"for the reply. Shorten the card (description, examples) or raise num_ctx "
                f"(the persona's options.num_ctx or ollama.num_ctx)."
            )
            needed = card_tokens
        else:
            needed = counter.message(text)
            message = (
                f"Your message is too long for {card.name!r}: about {needed} tokens, and "
                f"only {max(0, room - card_tokens)} are left in the model's window. "
                "Send it in shorter parts."
            )
        log.warning(
            "context: %s (persona %s, model %s)", message, card.id or card.name, window.model
        )
        raise ContextTooSmall(
            message,
            persona_id=card.id or card.name,
            needed=needed,
            available=room,
            num_ctx=window.num_ctx,
        )


def check_card_fits(card: PersonaCard, window: ContextWindow, *, user: str = "User") -> int:
    """The card's token estimate; raises :class:`ContextTooSmall` when the card
    alone (with room for a short message) does not fit ``window`` (for doctor)."""
    engine = ContextEngine()
    engine.plan(("", 0, ""), card, window, user=user, text="Hello", history=[])
    return engine.counter(window.model).message(card_text(card, user=user))


def _newest_before(summaries: Sequence[Summary], start: int) -> Summary | None:
    """The newest summary of messages before ``start`` (the window's first id)."""
    eligible = [s for s in summaries if s.through_id < start]
    return max(eligible, key=lambda s: s.through_id) if eligible else None


def _cut_point(history: list[StoredMessage], costs: list[int], drop: int) -> int:
    """The first message id to keep when at least ``drop`` tokens of the oldest
    messages fall out; the window then starts at a user message."""
    index, dropped = 0, 0
    while index < len(history) and dropped < drop:
        dropped += costs[index]
        index += 1
    while index < len(history) and history[index].role == "assistant":
        index += 1
    if index < len(history):
        return history[index].id
    return history[-1].id + 1 if history else 0


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a sentence end, if one is near."""
    head = text[:limit]
    end = max(head.rfind(". "), head.rfind("\n"))
    return head[: end + 1].strip() if end > limit // 2 else head.strip()
