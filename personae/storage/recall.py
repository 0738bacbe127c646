"""Ranking remembered items for a turn: keyword relevance, embeddings, recency.

Recall is on the reply path of every turn, so it reads as little as it can:

1. the candidates' keys — ``(id, persona_id, updated_at)`` of the scope's most
   recently updated items — an index-only scan of the ``(persona_id, user_id,
   updated_at)`` index;
2. the full rows of only those candidates this process has not seen at that
   ``updated_at`` (every change to an item's text, kind or confidence moves its
   ``updated_at``, so a cached row is never stale), straight through the
   connection: the ORM's per-row conversion cost more than the query itself;
3. ranking in Python over parsed rows with their keywords precomputed.

The row cache is per process, bounded, and keyed by the row's scope and
``updated_at``, so several processes sharing PostgreSQL each stay correct.

Most turns skip steps 1 and 2 as well: :func:`current_rows` keeps each recalled
candidate list with the user's memory version (``memory_versions``, moved by
database triggers on every change of the user's items, whoever makes it) and
reuses it while one small read says the version is unchanged. On SQLite that
read runs on the event loop's thread when it needs no waiting
(:func:`~personae.storage.connections.fetch_quick`); on PostgreSQL the reads of
many turns starting at once share one query
(:class:`~personae.core.cache.SharedReads`).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import Any

from tortoise import Tortoise

from personae.core.cache import SharedReads, keep_recent
from personae.storage import connections
from personae.storage.connections import marks

_WORD = re.compile(r"[a-z0-9][a-z0-9'_-]+")
STOPWORDS = frozenset(
    "the and for are but not you your with this that have has had was were what when "
    "where who why how can could would should will just about from they them their there "
    "then than into onto out over very really some any all our ours his her hers its it's "
    "i'm im yes no okay ok also too is am be been being do does did of to in on at by an".split()
)


@lru_cache(maxsize=65536)
def _keywords(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower())) - STOPWORDS


def keywords(text: str) -> set[str]:
    """The lower-cased content words of ``text``."""
    return set(_keywords(text))


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about four characters a token)."""
    return max(1, (len(text) + 3) // 4)


def cosine(a: Sequence[float] | None, b: Sequence[float] | None) -> float:
    """Cosine similarity of two vectors; 0.0 when either is missing or they differ in size."""
    if not a or not b or len(a) != len(b):
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def parse_timestamp(value: Any) -> datetime | None:
    """A stored timestamp as an aware datetime (SQLite hands back ISO strings)."""
    if value is None or isinstance(value, datetime):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


ROW_COLUMNS = (
    "id",
    "persona_id",
    "user_id",
    "kind",
    "text",
    "confidence",
    "source_message_ids",
    "created_at",
    "updated_at",
)
_CACHE_SIZE = 50_000
_rows: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()


_warm: OrderedDict[tuple[int, tuple[str, ...]], None] = OrderedDict()
"""Scope sets recalled lately, whose rows are probably cached."""


class _CandidateLists:
    """Candidate lists by (user, personas, limit), each with the memory version
    it was read at; at most ``max_rows`` rows held in all (oldest lists go)."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.held = 0
        self.lists: OrderedDict[tuple[Any, ...], tuple[int, Candidates]] = OrderedDict()

    def get(self, key: tuple[Any, ...], version: int) -> Candidates | None:
        entry = self.lists.get(key)
        if entry is None or entry[0] != version:
            return None
        self.lists.move_to_end(key)
        return entry[1]

    def keep(self, key: tuple[Any, ...], version: int, candidates: Candidates) -> None:
        old = self.lists.pop(key, None)
        if old is not None:
            self.held -= len(old[1].rows)
        self.lists[key] = (version, candidates)
        self.held += len(candidates.rows)
        while self.held > self.max_rows and len(self.lists) > 1:
            _, (_, dropped) = self.lists.popitem(last=False)
            self.held -= len(dropped.rows)

    def clear(self) -> None:
        self.lists.clear()
        self.held = 0


_lists = _CandidateLists(_CACHE_SIZE)


async def _read_versions(users: list[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    for start in range(0, len(users), 500):
        part = users[start : start + 500]
        rows = await connections.fetch_quick(
            f"SELECT user_id, version FROM memory_versions WHERE user_id IN "
            f"({', '.join('?' * len(part))})",
            part,
        )
        found.update((int(user_id), int(version)) for user_id, version in rows)
    return found


_versions: SharedReads[int, int] = SharedReads(_read_versions, 0, direct=connections.has_read_pool)


async def memory_version(user_id: int) -> int:
    """The user's memory version as stored now (0: their items never changed)."""
    return await _versions.get(user_id)


def clear_cache() -> None:
    """Forget every cached row (the process connects to another database)."""
    _rows.clear()
    _warm.clear()
    _lists.clear()


async def current_rows(user_id: int, personas: Sequence[str], limit: int) -> Candidates:
    """What :func:`candidate_rows` returns (without embeddings), reused while
    the user's memory version is the one it was read at. The rows are shared:
    callers do not change them."""
    version = await memory_version(user_id)
    key = (user_id, tuple(personas), limit)
    candidates = _lists.get(key, version)
    if candidates is None:
        # Read after the version: the rows are never older than the version they
        # are kept with (a change in between only makes the next turn read again).
        rows = await candidate_rows(user_id, personas, limit, with_embedding=False)
        candidates = Candidates(rows)
        _lists.keep(key, version, candidates)
    return candidates


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    """A raw row made ready for ranking: its embedding decoded. The columns only
    a record needs (timestamps, source message ids) stay as stored until one of
    the few rows a recall returns becomes a record (:func:`decode_sources`,
    :func:`parse_timestamp`): a cold recall reads 200 rows to return 12."""
    value = row.get("embedding")
    if isinstance(value, str):
        row["embedding"] = json.loads(value)
    return row


def decode_sources(value: Any) -> list[int]:
    """A stored ``source_message_ids`` (a JSON string on SQLite) as a list."""
    if isinstance(value, str):
        return [] if value == "[]" else list(json.loads(value))
    return list(value or [])


def epoch(value: Any) -> float | None:
    """A stored timestamp as seconds since the epoch."""
    stamp = parse_timestamp(value)
    return stamp.timestamp() if stamp is not None else None


async def candidate_rows(
    user_id: int, personas: Sequence[str], limit: int, *, with_embedding: bool
) -> list[dict[str, Any]]:
    """The ``limit`` most recently updated items of one user in ``personas``, as
    decoded rows with every column of a record (and ``embedding`` when asked)."""
    conn = Tortoise.get_connection("default")
    postgres = conn.capabilities.dialect == "postgres"
    p = marks(postgres, len(personas) + 2)
    where = (
        f"WHERE user_id = {p[0]} AND persona_id IN ({', '.join(p[1:-1])}) "
        f"ORDER BY updated_at DESC, id DESC LIMIT {p[-1]}"
    )
    params: list[Any] = [user_id, *personas, limit]
    if with_embedding:  # embeddings change without moving updated_at: read them fresh
        columns = ", ".join((*ROW_COLUMNS, "embedding"))
        rows = await conn.execute_query_dict(f"SELECT {columns} FROM memory_items {where}", params)
        return [_decode(row) for row in rows]
    warm_key = (user_id, tuple(personas))
    if warm_key not in _warm:
        # Nothing of these scopes is cached (likely): read whole rows at once
        # rather than the keys and then the rows.
        rows = await conn.execute_query_dict(
            f"SELECT {', '.join(ROW_COLUMNS)}, updated_at AS raw_updated_at "
            f"FROM memory_items {where}",
            params,
        )
        fresh: list[dict[str, Any]] = []
        for row in rows:
            key = (row["id"], row["persona_id"], user_id, row.pop("raw_updated_at"))
            kept = _rows.get(key) or _decode(row)
            keep_recent(_rows, key, kept, _CACHE_SIZE)
            fresh.append(kept)
        keep_recent(_warm, warm_key, None, _CACHE_SIZE // 20)
        return fresh
    _warm.move_to_end(warm_key)
    keys = await conn.execute_query_dict(
        f"SELECT id, persona_id, updated_at FROM memory_items {where}", params
    )
    wanted = [(k["id"], k["persona_id"], user_id, k["updated_at"]) for k in keys]
    missing = [key[0] for key in wanted if key not in _rows]
    for start in range(0, len(missing), 500):
        part = missing[start : start + 500]
        id_marks = ", ".join(marks(postgres, len(part), start=2))
        user_mark = "$1" if postgres else "?"
        rows = await conn.execute_query_dict(
            f"SELECT {', '.join(ROW_COLUMNS)}, updated_at AS raw_updated_at FROM memory_items "
            f"WHERE user_id = {user_mark} AND id IN ({id_marks})",
            [user_id, *part],
        )
        for row in rows:
            key = (row["id"], row["persona_id"], user_id, row.pop("raw_updated_at"))
            keep_recent(_rows, key, _decode(row), _CACHE_SIZE)
    found: list[dict[str, Any]] = []
    for key in wanted:
        cached = _rows.get(key)
        if cached is not None:  # None: changed between the two reads; left out this turn
            keep_recent(_rows, key, cached, _CACHE_SIZE)
            found.append(cached)
    return found


def _features(row: dict[str, Any]) -> tuple[frozenset[str], float, float, float | None]:
    """What scoring needs of a row that does not depend on the query: its words,
    1/sqrt(word count), the confidence term and when it was updated. Kept in the
    row, which the row cache shares between turns (a changed item is a new row)."""
    features = row.get("_features")
    if features is None:
        words = _keywords(row["text"])
        features = (
            words,
            1 / math.sqrt(len(words)) if words else 0.0,
            0.3 * row["confidence"],
            epoch(row["updated_at"]),
        )
        row["_features"] = features
    return features


RECENCY_DAYS = 30.0
"""An item's recency term falls by a factor e every this many days since its update."""
_RECENCY_SECONDS = 86400 * RECENCY_DAYS


class Candidates:
    """Rows to rank, with what ranking needs of them prepared once: the lists
    :func:`current_rows` keeps are ranked again on every turn until they change.

    Most of a row's score does not depend on the query: ``0.5 * recency +
    0.3 * confidence``, where recency is ``exp(-days since update / 30)``. Taken
    from the latest update ``t0`` in the list, that is ``d * a + c`` for every row,
    with ``d = exp(-(now - t0) / 30 days)`` the same for all, so a turn pays one
    multiply-add a row for it. The query's words reach only the rows that hold
    them, through an index from word to rows."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self._prepared: tuple[Any, ...] | None = None

    def _prepare(self) -> tuple[Any, ...]:
        if self._prepared is None:
            features = [_features(row) for row in self.rows]
            by_word: dict[str, list[int]] = {}
            for index, (words, _, _, _) in enumerate(features):
                for word in words:
                    postings = by_word.get(word)
                    if postings is None:
                        by_word[word] = [index]
                    else:
                        postings.append(index)
            costs = [estimate_tokens(row["text"]) for row in self.rows]
            ids = [row["id"] for row in self.rows]
            t0 = max((ts for _, _, _, ts in features if ts is not None), default=0.0)
            # base = d * slope + offset (rows never updated: recency 1, no slope)
            exp = math.exp
            slopes = [
                0.0 if ts is None else 0.5 * exp((ts - t0) / _RECENCY_SECONDS)
                for _, _, _, ts in features
            ]
            offsets = [fixed if ts is not None else fixed + 0.5 for _, _, fixed, ts in features]
            # ties in score go to the higher id: a stable sort of rows in id order
            by_id = sorted(range(len(ids)), key=ids.__getitem__, reverse=True)
            self._prepared = (features, by_word, costs, ids, t0, slopes, offsets, by_id)
        return self._prepared

    def _base_scores(self, now_ts: float) -> list[float]:
        """Every row's score before relevance: ``0.5 * recency + confidence term``."""
        features, _, _, _, t0, slopes, offsets, _ = self._prepare()
        if now_ts >= t0:
            d = math.exp((t0 - now_ts) / _RECENCY_SECONDS)
            return [d * a + c for a, c in zip(slopes, offsets, strict=True)]
        exp = math.exp  # an update in the future of ``now``: recency capped at 1
        return [
            0.5 * (1.0 if ts is None else exp(-max(0.0, now_ts - ts) / _RECENCY_SECONDS)) + fixed
            for _, _, fixed, ts in features
        ]

    def rank(
        self,
        query: str,
        *,
        context: str = "",
        query_embedding: Sequence[float] | None = None,
        max_items: int,
        budget_tokens: int,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """The best rows within the budget, best first.

        Relevance is keyword overlap with ``query`` (and, at half weight, with
        ``context``), plus embedding similarity when given; recency and
        confidence break ties. Only rows that share a word with the query or the
        context have their overlap computed; the others score 0 for it."""
        features, by_word, costs, _, _, _, _, by_id = self._prepare()
        wanted = _keywords(query)
        around = _keywords(context) - wanted
        scores = self._base_scores(now.timestamp())
        # Overlap in half-words: 2 for each query word a row holds, 1 for each
        # context word.
        postings = [by_word[word] for word in wanted if word in by_word]
        postings += postings
        postings += [by_word[word] for word in around if word in by_word]
        halves = Counter(chain.from_iterable(postings))
        if query_embedding:
            for i, row in enumerate(self.rows):
                overlap = halves.get(i, 0) * 0.5 * features[i][1]
                similar = cosine(query_embedding, row.get("embedding"))
                scores[i] += 2.0 * overlap + 1.5 * max(0.0, similar)
        else:
            for i, count in halves.items():
                scores[i] += count * features[i][1]  # 2.0 * (count / 2) * inv_scale
        order = sorted(by_id, key=scores.__getitem__, reverse=True)
        chosen: list[dict[str, Any]] = []
        spent = 0
        for i in order:
            if spent + costs[i] > budget_tokens:
                continue
            chosen.append(self.rows[i])
            spent += costs[i]
            if len(chosen) >= max_items:
                break
        return chosen
