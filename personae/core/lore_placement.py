"""The card's per-turn additions (:mod:`personae.core.card_prompt`) inside the
token budget (:mod:`personae.core.context`): activated lorebook entries are one
budgeted part placed after the history; at-depth entries and the depth prompt
are budgeted too, and inserted into the fitted history at their depth."""

from __future__ import annotations

from dataclasses import replace

from personae.core.card_prompt import TurnInjections, insert_at_depth
from personae.core.context import BudgetPart, PromptPlan

LORE_PART = "lorebook"
DEPTH_PART = "lorebook-depth"
LORE_PRIORITY = 15
"""After trusted plugin instructions (10), before the conversation summary (20)
and recalled memory (30): the card's own world comes before what was learned."""
DEPTH_PRIORITY = 12
LORE_ORDER = 50
"""Sorts the lorebook block before plugin sections (order 100) after the history."""


def lore_parts(injections: TurnInjections) -> list[BudgetPart]:
    """The budgeted parts for one turn. Entries are offered most important first
    (highest insertion order), so a full window cuts the lowest first; the block
    is rendered lowest first, the highest nearest the new message."""
    parts: list[BudgetPart] = []
    if injections.lore:
        parts.append(
            BudgetPart(
                LORE_PART,
                tuple(reversed(injections.lore)),
                LORE_PRIORITY,
                "turn",
                order=LORE_ORDER,
                reverse=True,
            )
        )
    if injections.depth:
        parts.append(
            BudgetPart(
                DEPTH_PART,
                tuple(text for _, _, text in injections.depth),
                DEPTH_PRIORITY,
                "depth",
            )
        )
    return parts


def place_depth_entries(plan: PromptPlan, injections: TurnInjections) -> PromptPlan:
    """``plan`` with the at-depth entries the budget kept inserted into its
    conversation (history, the turn's system block and the new message count as
    the conversation's end; depth 0 follows the new message)."""
    kept = plan.parts.get(DEPTH_PART, 0)
    if not kept:
        return plan
    messages = plan.messages
    head = plan.stable - len(plan.history)  # the card's message and the summary
    history = messages[head : head + len(plan.history)]
    rest = messages[head + len(plan.history) :]  # [turn block], new message, [after]
    at = 0 if rest[0].role == "user" else 1
    user = rest[at]
    placed = insert_at_depth([*history, user], injections.depth[:kept])
    if at:  # the turn's system block travels with the new message
        placed.insert(next(i for i, m in enumerate(placed) if m is user), rest[0])
    moved = [*messages[:head], *placed, *rest[at + 1 :]]
    changed = next(
        (i for i, (a, b) in enumerate(zip(moved, messages, strict=False)) if a is not b),
        len(messages),
    )
    return replace(plan, messages=moved, stable=min(plan.stable, changed))
