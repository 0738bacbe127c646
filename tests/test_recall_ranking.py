"""Ranking recalled items: the prepared, per-turn-cheap scoring in
:class:`~personae.storage.recall.Candidates` against the plain definition of the
score, written out here once per row."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from personae.storage.recall import ROW_COLUMNS, Candidates, cosine, estimate_tokens, keywords

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WORDS = ("tea", "chess", "cat", "miso", "kyoto", "knee", "french", "sister", "ramen", "book")


def reference(
    rows: list[dict[str, Any]],
    query: str,
    context: str,
    embedding: list[float] | None,
    max_items: int,
    budget: int,
    now: datetime,
) -> list[int]:
    """The ids a recall returns, by the score as documented: 2 x keyword overlap
    (context words at half weight, per sqrt of the row's word count) + 1.5 x
    positive embedding similarity + 0.5 x recency (e-fold per 30 days, at most 1)
    + 0.3 x confidence; ties to the higher id; rows over the budget skipped."""
    wanted = keywords(query)
    around = keywords(context) - wanted
    scored = []
    for row in rows:
        words = keywords(row["text"])
        overlap = 0.0
        if words:
            overlap = (len(wanted & words) + 0.5 * len(around & words)) / math.sqrt(len(words))
        similar = max(0.0, cosine(embedding, row.get("embedding"))) if embedding else 0.0
        updated = row["updated_at"]
        age_days = 0.0 if updated is None else max(0.0, (now - updated).total_seconds() / 86400)
        recency = math.exp(-age_days / 30)
        score = 2.0 * overlap + 1.5 * similar + 0.5 * recency + 0.3 * row["confidence"]
        scored.append((score, row["id"], row))
    chosen: list[int] = []
    spent = 0
    for _, _, row in sorted(scored, key=lambda s: (s[0], s[1]), reverse=True):
        cost = estimate_tokens(row["text"])
        if spent + cost > budget:
            continue
        chosen.append(row["id"])
        spent += cost
        if len(chosen) >= max_items:
            break
    return chosen


row_specs = st.lists(
    st.tuples(
        st.lists(st.sampled_from(WORDS), min_size=0, max_size=4),  # the item's words
        st.sampled_from([0.5, 0.7, 0.9]),  # confidence
        st.one_of(st.none(), st.sampled_from([-3, 0, 1, 2, 40, 365])),  # days before now
        st.one_of(st.none(), st.lists(st.sampled_from([0.0, 1.0, -1.0]), min_size=3, max_size=3)),
    ),
    min_size=1,
    max_size=30,
)


def make_rows(specs: list[tuple[Any, ...]], ids: list[int]) -> list[dict[str, Any]]:
    rows = []
    for (words, confidence, days, vector), row_id in zip(specs, ids, strict=True):
        updated = None if days is None else NOW - timedelta(days=days)
        text = " ".join(words) or "nothing much"
        rows.append(
            {
                "id": row_id,
                "text": text,
                "confidence": confidence,
                "updated_at": updated,
                "embedding": vector,
            }
        )
    return rows


def as_read(row: dict[str, Any]) -> tuple[Any, ...]:
    """A row as recall reads it: the columns in order, timestamps as SQLite
    stores them (ISO strings), then the embedding when there is one."""
    stored = {**row, "updated_at": None if row["updated_at"] is None else str(row["updated_at"])}
    values = tuple(stored.get(column) for column in ROW_COLUMNS)
    return values if row.get("embedding") is None else (*values, row["embedding"])


@settings(max_examples=300, deadline=None)
@given(
    specs=row_specs,
    data=st.data(),
    query=st.lists(st.sampled_from(WORDS), max_size=3),
    context=st.lists(st.sampled_from(WORDS), max_size=4),
    use_embedding=st.booleans(),
    max_items=st.integers(1, 8),
    budget=st.integers(1, 40),
    hours_later=st.sampled_from([0, 5, 24 * 100]),
)
def test_prepared_ranking_matches_the_plain_score(
    specs: list[tuple[Any, ...]],
    data: st.DataObject,
    query: list[str],
    context: list[str],
    use_embedding: bool,
    max_items: int,
    budget: int,
    hours_later: int,
) -> None:
    """Rows updated in the future of ``now`` (recency capped at 1), never updated
    (None), tied scores and a later ``now`` on the same prepared candidates all
    rank as the plain score does."""
    ids = data.draw(
        st.lists(st.integers(1, 10_000), min_size=len(specs), max_size=len(specs), unique=True)
    )
    rows = make_rows(specs, ids)
    candidates = Candidates([as_read(row) for row in rows])
    embedding = [1.0, 0.0, 1.0] if use_embedding else None
    for now in (NOW, NOW + timedelta(hours=hours_later)):  # prepared once, ranked twice
        ranked = candidates.rank(
            " ".join(query),
            context=" ".join(context),
            query_embedding=embedding,
            max_items=max_items,
            budget_tokens=budget,
            now=now,
        )
        expected = reference(
            rows, " ".join(query), " ".join(context), embedding, max_items, budget, now
        )
        assert [rows[i]["id"] for i in ranked] == expected


def test_ties_go_to_the_higher_id_whatever_order_the_rows_come_in() -> None:
    stamp = NOW - timedelta(days=2)
    rows = [
        {"id": i, "text": "likes tea", "confidence": 0.8, "updated_at": stamp} for i in (5, 9, 1, 7)
    ]
    ranked = Candidates([as_read(row) for row in rows]).rank(
        "tea?", max_items=4, budget_tokens=100, now=NOW
    )
    assert [rows[i]["id"] for i in ranked] == [9, 7, 5, 1]
