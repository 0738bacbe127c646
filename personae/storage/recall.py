"""Ranking remembered items for a turn: keyword relevance, embeddings, recency.

Recall is on the reply path of every turn, so it reads as little as it can.
:func:`current_rows` keeps each recalled candidate list (a user's most recently
updated items in one or more personas) with the user's memory version
(``memory_versions``, moved by database triggers on every change of the user's
items, whoever makes it) and reuses it while one small read says the version is
unchanged. On SQLite that read runs on the event loop's thread when it needs no
waiting (:func:`~personae.storage.connections.fetch_quick`); on PostgreSQL the
reads of many turns starting at once share one query
(:class:`~personae.core.cache.SharedReads`).

When the version has moved, the list is read again, by halves:

1. the candidates' keys — ``(id, persona_id, updated_at)`` — an index-only scan
   of the ``(persona_id, user_id, updated_at)`` index;
2. the full rows of only those keys the previous list does not hold (every
   change to an item's text, kind or confidence moves its ``updated_at``, so a
   kept row is never stale).

A list never read before is read whole, in one query. Rows are read straight
through the connection as plain tuples (the ORM's per-row conversion cost more
than the query itself), and ranking prepares them column by column
(:class:`Candidates`). The lists are per process and bounded; several processes
sharing PostgreSQL each stay correct, since each checks the stored version.
"""

from __future__ import annotations

import math
import re
from collections import Counter, OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import Any

from personae.core.cache import SharedReads
from personae.storage import connections
from personae.storage.records import MemoryRecord

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


_fromisoformat = datetime.fromisoformat


def parse_timestamp(value: Any) -> datetime | None:
    """A stored timestamp as an aware datetime (SQLite hands back ISO strings;
    a naive one means UTC). Recall parses one per candidate row."""
    if value is None:
        return None
    stamp = value if isinstance(value, datetime) else _fromisoformat(str(value))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


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
_COLUMNS = ", ".join(ROW_COLUMNS)
Row = tuple[Any, ...]
"""A memory item as recall reads it: the values of :data:`ROW_COLUMNS` in order,
as stored (on SQLite, timestamps and source ids are strings)."""
_ID, _PERSONA, _TEXT, _CONFIDENCE, _UPDATED = (
    ROW_COLUMNS.index(c) for c in ("id", "persona_id", "text", "confidence", "updated_at")
)
_EMBEDDING = len(ROW_COLUMNS)
"""A row read with its embedding has it decoded in this column, its last."""

_CACHE_SIZE = 50_000
"""Rows the kept candidate lists hold in all, at most."""


class _CandidateLists:
    """Candidate lists by (user, personas, limit), each with the memory version
    it was read at; at most ``max_rows`` rows held in all (oldest lists go)."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.held = 0
        self.lists: OrderedDict[tuple[Any, ...], tuple[int, Candidates]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> tuple[int, Candidates] | None:
        """The list kept for ``key`` and the version it was read at."""
        entry = self.lists.get(key)
        if entry is not None:
            self.lists.move_to_end(key)
        return entry

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
    """Forget every kept list (the process connects to another database)."""
    _lists.clear()


async def current_rows(user_id: int, personas: Sequence[str], limit: int) -> Candidates:
    """What :func:`candidate_rows` returns (without embeddings), reused while
    the user's memory version is the one it was read at. The rows are shared:
    callers do not change them."""
    version = await memory_version(user_id)
    key = (user_id, tuple(personas), limit)
    entry = _lists.get(key)
    if entry is not None and entry[0] == version:
        return entry[1]
    # Read after the version: the rows are never older than the version they
    # are kept with (a change in between only makes the next turn read again).
    known = entry[1].rows if entry is not None else ()
    candidates = Candidates(await candidate_rows(user_id, personas, limit, known=known))
    _lists.keep(key, version, candidates)
    return candidates


def decode_sources(value: Any) -> list[int]:
    """A stored ``source_message_ids`` as a list."""
    return [] if value == "[]" else list(connections.json_column(value) or [])


def _epoch(value: Any) -> float | None:
    """A stored timestamp as seconds since the epoch."""
    stamp = parse_timestamp(value)
    return None if stamp is None else stamp.timestamp()


def to_record(row: Row) -> MemoryRecord:
    """The record of a row as recall reads it (the columns of :data:`ROW_COLUMNS`,
    in order; on SQLite timestamps and source ids are still strings)."""
    item_id, persona_id, user_id, kind, text, confidence, sources, created, updated = row[:9]
    return MemoryRecord(
        item_id,
        persona_id,
        user_id,
        kind,
        text,
        confidence,
        decode_sources(sources),
        parse_timestamp(created),
        parse_timestamp(updated),
    )


def _where(personas: int) -> str:
    """The candidates' condition and order, marked ``?`` as :func:`connections.fetch` takes."""
    return (
        f"FROM memory_items WHERE user_id = ? AND persona_id IN ({', '.join('?' * personas)}) "
        "ORDER BY updated_at DESC, id DESC LIMIT ?"
    )


async def candidate_rows(
    user_id: int,
    personas: Sequence[str],
    limit: int,
    *,
    with_embedding: bool = False,
    known: Sequence[Row] = (),
) -> list[Row]:
    """The ``limit`` most recently updated items of one user in ``personas``, as
    rows of the :data:`ROW_COLUMNS` values (then the decoded embedding, when
    asked). Rows of ``known`` (an earlier read of the same items) that are still
    current are reused rather than read again.

    The rows are plain tuples of strings and numbers, as the database driver
    returns them, so the garbage collector stops tracking those that are kept;
    only the few a recall returns are made records (:meth:`Candidates.record`)."""
    params: list[Any] = [user_id, *personas, limit]
    where = _where(len(personas))
    if with_embedding:  # embeddings change without moving updated_at: read them fresh
        rows = await connections.fetch(f"SELECT {_COLUMNS}, embedding {where}", params)
        return [(*row[:-1], connections.json_column(row[-1])) for row in rows]
    if not known:
        return await connections.fetch(f"SELECT {_COLUMNS} {where}", params)
    keys = await connections.fetch(f"SELECT id, persona_id, updated_at {where}", params)
    kept = {(row[_ID], row[_PERSONA], row[_UPDATED]): row for row in known}
    found = [kept.get(key) for key in keys]
    missing = [key[0] for key, row in zip(keys, found, strict=True) if row is None]
    for start in range(0, len(missing), 500):
        part = missing[start : start + 500]
        rows = await connections.fetch(
            f"SELECT {_COLUMNS} FROM memory_items WHERE user_id = ? AND id IN "
            f"({', '.join('?' * len(part))})",
            [user_id, *part],
        )
        kept.update(((row[_ID], row[_PERSONA], row[_UPDATED]), row) for row in rows)
    if missing:
        found = [kept.get(key) for key in keys]
    # None: a row changed between the two reads (it has another key); left out this turn
    return [row for row in found if row is not None]


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
    them, through an index from word to rows. Everything is prepared column by
    column, from the rows as read: a cold recall prepares 200 rows to return 12."""

    __slots__ = (
        "_by_id",
        "_by_word",
        "_costs",
        "_inv_scale",
        "_offsets",
        "_ready",
        "_records",
        "_slopes",
        "_stamps",
        "_t0",
        "rows",
    )

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self._records: dict[int, MemoryRecord] = {}
        self._ready = False

    def record(self, index: int) -> MemoryRecord:
        """The record of ``rows[index]``, made once for this list."""
        record = self._records.get(index)
        if record is None:
            record = self._records[index] = to_record(self.rows[index])
        return record

    def records(self) -> list[MemoryRecord]:
        return [self.record(i) for i in range(len(self.rows))]

    def _prepare(self) -> None:
        rows = self.rows
        texts = [row[_TEXT] for row in rows]
        words = [_keywords(text) for text in texts]
        self._inv_scale = [1 / math.sqrt(len(w)) if w else 0.0 for w in words]
        by_word: dict[str, list[int]] = {}
        for index, row_words in enumerate(words):
            for word in row_words:
                postings = by_word.get(word)
                if postings is None:
                    by_word[word] = [index]
                else:
                    postings.append(index)
        self._by_word = by_word
        self._costs = [estimate_tokens(text) for text in texts]
        stamps = self._stamps = [_epoch(row[_UPDATED]) for row in rows]
        t0 = self._t0 = max((ts for ts in stamps if ts is not None), default=0.0)
        # base = d * slope + offset (rows never updated: recency 1, no slope)
        exp = math.exp
        self._slopes = [
            0.0 if ts is None else 0.5 * exp((ts - t0) / _RECENCY_SECONDS) for ts in stamps
        ]
        self._offsets = [
            0.3 * row[_CONFIDENCE] + (0.0 if ts is not None else 0.5)
            for row, ts in zip(rows, stamps, strict=True)
        ]
        # ties in score go to the higher id: a stable sort of rows in id order
        ids = [row[_ID] for row in rows]
        self._by_id = sorted(range(len(ids)), key=ids.__getitem__, reverse=True)
        self._ready = True

    def _base_scores(self, now_ts: float) -> list[float]:
        """Every row's score before relevance: ``0.5 * recency + confidence term``."""
        t0 = self._t0
        if now_ts >= t0:
            d = math.exp((t0 - now_ts) / _RECENCY_SECONDS)
            return [d * a + c for a, c in zip(self._slopes, self._offsets, strict=True)]
        exp = math.exp  # an update in the future of ``now``: recency capped at 1
        return [
            c + (0.5 * exp(-max(0.0, now_ts - ts) / _RECENCY_SECONDS) if ts is not None else 0.0)
            for c, ts in zip(self._offsets, self._stamps, strict=True)
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
    ) -> list[int]:
        """The indices in :attr:`rows` of the best rows within the budget, best first.

        Relevance is keyword overlap with ``query`` (and, at half weight, with
        ``context``), plus embedding similarity when given (rows read with their
        embedding, its last column); recency and confidence break ties. Only rows
        that share a word with the query or the context have their overlap
        computed; the others score 0 for it."""
        if not self._ready:
            self._prepare()
        by_word, inv_scale = self._by_word, self._inv_scale
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
                overlap = halves.get(i, 0) * 0.5 * inv_scale[i]
                similar = cosine(query_embedding, row[-1] if len(row) > _EMBEDDING else None)
                scores[i] += 2.0 * overlap + 1.5 * max(0.0, similar)
        else:
            for i, count in halves.items():
                scores[i] += count * inv_scale[i]  # 2.0 * (count / 2) * inv_scale
        costs = self._costs
        chosen: list[int] = []
        spent = 0
        for i in sorted(self._by_id, key=scores.__getitem__, reverse=True):
            if spent + costs[i] > budget_tokens:
                continue
            chosen.append(i)
            spent += costs[i]
            if len(chosen) >= max_items:
                break
        return chosen
