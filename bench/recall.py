"""Memory recall latency at scale: ``MemoryStore.recall`` on SQLite holding 1M
memory items across 10k users x 10 personas, with the default settings budget.

Side by side, for the same lookups in the same run (the order rotates per query):

- ``MemoryStore.recall`` with a user message as the query and recent conversation
  as context, like the profile plugin: what a turn pays (the user's memory
  version; when it moved, or the process has not recalled these scopes lately,
  the candidates' keys and the rows it has not seen; ranking). A scope picked
  again while its memory is unchanged costs only the version read;
- the same candidate query through Tortoise ``.values()`` without ranking;
- baseline: the same SQL through the ``sqlite3`` module directly.

Activity is skewed like real use: users' item counts follow a Zipf-like law and
personas differ in popularity, so a few scopes hold thousands of items (more than
``memory.recall_candidates``) while most hold a handful. Queries pick scopes
weighted by their items (busy users take more turns), uniformly by user, and for
a two-persona sharing group.

Seeding uses ``sqlite3.executemany`` in one transaction on a migrated file; the
file is cached under the temp dir keyed by its parameters and the migrations, so
reruns start at once (``--no-cache`` seeds a throwaway copy). Run
``python bench/recall.py`` (``--help`` for smaller runs). Exit status is 0 even
when the target is missed; the table says FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import itertools
import logging
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as `python bench/recall.py` from a checkout
    sys.path.insert(0, str(ROOT))

from memory_texts import TEMPLATES as BASE_TEMPLATES  # noqa: E402  (bench/, beside this file)
from memory_texts import memory_text, percentile  # noqa: E402

from personae.core.settings import MemorySettings  # noqa: E402
from personae.core.types import Scope  # noqa: E402
from personae.storage import Database, MemoryStore  # noqa: E402
from personae.storage.models import MemoryItem  # noqa: E402
from personae.storage.recall import ROW_COLUMNS  # noqa: E402

P99_TARGET_MS = 5.0
SEED = 20240611
CACHE_FORMAT = 1  # bump when the seeding below changes

PERSONAS = ("sage", "pip", "scav", "dagoth-ur", "ada", "bard", "coach", "chef", "doc", "muse")
PERSONA_WEIGHTS = (30, 20, 12, 10, 8, 6, 5, 4, 3, 2)
USER_ZIPF = 0.8  # weight of the user ranked r is r ** -USER_ZIPF

RAW_SQL = (
    'SELECT "id","persona_id","user_id","kind","text","confidence","source_message_ids",'
    '"created_at","updated_at" FROM "memory_items" WHERE "user_id"=? AND "persona_id"{persona} '
    'ORDER BY "updated_at" DESC LIMIT ?'
)
ITEM_SQL = (
    'INSERT INTO "memory_items" ("persona_id", "user_id", "kind", "text", "confidence", '
    '"source_message_ids", "created_at", "updated_at", "uses") VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)'
)
USER_SQL = 'INSERT INTO "users" ("id", "name", "is_admin", "created_at") VALUES (?, ?, 0, ?)'

QUERIES = (
    "Do you remember what tea I like? I want to buy some for my sister in Lisbon.",
    "I started running again this week, my knee still hurts a bit though.",
    "My boss asked me to lead the new project, I'm nervous about presenting.",
    "Can you suggest something to cook tonight? I can't eat peanuts, remember.",
    "I finally finished the book about the Roman empire you recommended.",
    "We are planning a trip to Kyoto in April, any ideas?",
    "My cat Miso knocked over the plant again. How do I stop that?",
    "I want to learn French properly this time. Where should I begin?",
    "Work was rough today, the deadline moved and nobody told me.",
    "Remind me what my brother's kids are called? I always mix them up.",
)
CONTEXT = (  # the recent conversation, which the profile plugin passes along
    "I started running again this week, my knee still hurts a bit though.\n"
    "Good for you. Ease in: shorter runs on soft ground, and rest the knee if it swells.\n"
    "We are planning a trip to Kyoto in April, any ideas?\n"
    "April is cherry blossom season, so book early and visit the temples at dawn."
)
TEMPLATES = (
    *BASE_TEMPLATES,
    ("fact", "Their {relation} {name} has two kids and visits every {month}."),
)


# -- statistics and printing -----------------------------------------------------------


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


# -- seeding -----------------------------------------------------------------------------


def text_pool(rng: random.Random, size: int = 20_000) -> list[tuple[str, str]]:
    return [memory_text(rng, TEMPLATES) for _ in range(size)]


def scope_owners(items: int, users: int, personas: int, rng: random.Random) -> list[tuple]:
    """(persona, user) of every item, in insertion order: users by a Zipf-like law
    (user ids shuffled against rank), personas by popularity."""
    ranks = list(range(1, users + 1))
    rng.shuffle(ranks)
    user_weights = list(itertools.accumulate(rank**-USER_ZIPF for rank in ranks))
    user_ids = rng.choices(range(1, users + 1), cum_weights=user_weights, k=items)
    names = PERSONAS[:personas]
    persona_ids = rng.choices(names, weights=PERSONA_WEIGHTS[:personas], k=items)
    return list(zip(persona_ids, user_ids, strict=True))


def seed_file(path: Path, items: int, users: int, personas: int) -> None:
    """Bulk-insert users and items with sqlite3 in one transaction, rebuilding the
    scope index afterwards (faster than maintaining it row by row)."""
    rng = random.Random(SEED)
    owners = scope_owners(items, users, personas, rng)
    pool = text_pool(rng)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=365)
    step = timedelta(days=365) / max(1, items)

    def rows() -> Any:
        for index, (persona, user) in enumerate(owners):
            kind, text = pool[rng.randrange(len(pool))]
            stamp = str(start + step * index)  # the format Tortoise writes on SQLite
            confidence = round(0.5 + rng.random() / 2, 2)
            yield (persona, user, kind, text, confidence, "[]", stamp, stamp)

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=OFF")
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='memory_items' "
            "AND sql IS NOT NULL"
        ).fetchall()
        conn.execute("BEGIN")
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        stamp = str(now)
        conn.executemany(USER_SQL, ((u, f"user{u}", stamp) for u in range(1, users + 1)))
        conn.executemany(ITEM_SQL, rows())
        for _name, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def migrations_digest() -> str:
    digest = hashlib.sha256(str(CACHE_FORMAT).encode())
    folder = ROOT / "personae" / "storage" / "migrations"
    for file in sorted(folder.glob("*.py")):
        digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()[:12]


def cache_slot(folder: Path, items: int, users: int, personas: int) -> tuple[Path, bool]:
    """The seeded file's path for these parameters and whether it already exists;
    when it does not, files seeded for older schemas (or left by an interrupted
    run) with the same parameters are removed."""
    stem = f"recall-i{items}-u{users}-p{personas}-s{SEED}-"
    path = folder / f"{stem}{migrations_digest()}.db"
    if path.exists():
        return path, True
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(stem + "*"):
        stale.unlink()
    return path, False


async def prepare(folder: Path, items: int, users: int, personas: int) -> tuple[Path, str]:
    """The seeded database file in ``folder`` (reused when already there), and how
    it was obtained."""
    path, cached = cache_slot(folder, items, users, personas)
    if cached:
        return path, "reused from cache"
    partial = path.with_name(path.name + ".partial")
    started = time.perf_counter_ns()
    await Database(f"sqlite://{partial}").migrate()
    seed_file(partial, items, users, personas)
    os.replace(partial, path)
    return path, f"seeded in {(time.perf_counter_ns() - started) / 1e9:.1f}s"


# -- measuring ---------------------------------------------------------------------------


def query_sets(
    path: Path, personas: int, count: int, rng: random.Random
) -> tuple[dict[str, list[tuple[list[Scope], str]]], dict[str, Any]]:
    """The lookups to time, and figures about the data they run on."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        counts = conn.execute(
            'SELECT "persona_id", "user_id", COUNT(*) FROM "memory_items" '
            'GROUP BY "persona_id", "user_id"'
        ).fetchall()
        total = conn.execute('SELECT COUNT(*) FROM "memory_items"').fetchone()[0]
    finally:
        conn.close()
    sizes = sorted(n for _, _, n in counts)
    by_user: dict[int, list[str]] = {}
    for persona, user, _ in counts:
        by_user.setdefault(user, []).append(persona)
    weights = list(itertools.accumulate(n for _, _, n in counts))
    busy = rng.choices(counts, cum_weights=weights, k=count)
    users = list(by_user)
    sets: dict[str, list[tuple[list[Scope], str]]] = {
        "one scope, picked by activity": [([Scope(p, u)], rng.choice(QUERIES)) for p, u, _ in busy],
        "one scope, picked by user": [
            ([Scope(rng.choice(by_user[u]), u)], rng.choice(QUERIES))
            for u in rng.choices(users, k=count)
        ],
    }
    if personas >= 2:
        group = PERSONAS[:2]
        members = [(u, n) for p, u, n in counts if p in group]
        sets[f"sharing group {'+'.join(group)}, by activity"] = [
            ([Scope(group[0], u), Scope(group[1], u)], rng.choice(QUERIES))
            for u, _ in rng.choices(
                members, cum_weights=list(itertools.accumulate(n for _, n in members)), k=count
            )
        ]
    candidates = MemorySettings().recall_candidates
    facts = {
        "total": total,
        "scopes": len(sizes),
        "median": sizes[len(sizes) // 2],
        "max": sizes[-1],
        "full": sum(1 for n in sizes if n >= candidates),
        "busy_full": sum(1 for _, _, n in busy if n >= candidates) / max(1, count),
    }
    return sets, facts


async def measure(
    store: MemoryStore,
    raw: sqlite3.Connection,
    lookups: list[tuple[list[Scope], str]],
    settings: MemorySettings,
    *,
    warmup: int,
) -> dict[str, list[int]]:
    """Time the three ways of running each lookup, rotating their order."""

    async def recall(scopes: list[Scope], query: str) -> int:
        started = time.perf_counter_ns()
        found = await store.recall(
            scopes,
            query,
            context=CONTEXT,
            max_items=settings.recall_max_items,
            budget_tokens=settings.recall_budget_tokens,
            candidates=settings.recall_candidates,
        )
        elapsed = time.perf_counter_ns() - started
        if not found:
            raise RuntimeError(f"recall found nothing for {scopes}")
        return elapsed

    async def orm(scopes: list[Scope], query: str) -> int:
        started = time.perf_counter_ns()
        personas = sorted({s.persona_id for s in scopes})
        base = MemoryItem.filter(user_id=scopes[0].user_id)
        base = (
            base.filter(persona_id=personas[0])
            if len(personas) == 1
            else base.filter(persona_id__in=personas)
        )
        rows = (
            await base.order_by("-updated_at")
            .limit(settings.recall_candidates)
            .values(*ROW_COLUMNS)
        )
        elapsed = time.perf_counter_ns() - started
        if not rows:
            raise RuntimeError("the ORM query found nothing")
        return elapsed

    async def sql(scopes: list[Scope], query: str) -> int:
        started = time.perf_counter_ns()
        personas = sorted({s.persona_id for s in scopes})
        marks = "=?" if len(personas) == 1 else f" IN ({','.join('?' * len(personas))})"
        statement = RAW_SQL.format(persona=marks)
        rows = raw.execute(
            statement, (scopes[0].user_id, *personas, settings.recall_candidates)
        ).fetchall()
        elapsed = time.perf_counter_ns() - started
        if not rows:
            raise RuntimeError("the raw query found nothing")
        return elapsed

    ways = [("recall", recall), ("orm", orm), ("sql", sql)]
    times: dict[str, list[int]] = {name: [] for name, _ in ways}
    for index, (scopes, query) in enumerate(lookups):
        shift = index % len(ways)
        for name, way in ways[shift:] + ways[:shift]:
            elapsed = await way(scopes, query)
            if index >= warmup:
                times[name].append(elapsed)
    return times


async def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    settings = MemorySettings()
    with tempfile.TemporaryDirectory(prefix="personae-bench-") as scratch:
        folder = Path(scratch) if args.no_cache else Path(args.cache_dir)
        path, how = await prepare(folder, args.items, args.users, args.personas)
        lookups, facts = query_sets(path, args.personas, args.queries, random.Random(SEED + 1))

        print("personae memory recall benchmark")
        print(
            f"  python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
            f"{os.cpu_count()} CPUs, {platform.machine()}, load average "
            f"{os.getloadavg()[0]:.2f} at start"
        )
        print(
            f"  data: {facts['total']:,} items, {args.users:,} users x {args.personas} personas "
            f"({facts['scopes']:,} non-empty scopes; items per scope median {facts['median']}, "
            f"max {facts['max']:,}; {facts['full']:,} scopes hold >= "
            f"{settings.recall_candidates} items)"
        )
        print(f"  file: {path} ({path.stat().st_size / 2**20:.0f} MiB, {how})")
        print(
            f"  recall settings: candidates {settings.recall_candidates}, max_items "
            f"{settings.recall_max_items}, budget {settings.recall_budget_tokens} tokens"
        )
        print(
            f"  {args.queries} lookups per set ({args.warmup} more untimed first); "
            f"{facts['busy_full']:.0%} of activity-picked lookups read a full "
            f"{settings.recall_candidates}-row candidate list"
        )
        print(f"  baseline SQL (sqlite3, same file): {RAW_SQL.format(persona='=?')}")
        print()

        db = Database(f"sqlite://{path}")
        await db.connect()
        raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        # As `personae serve` does once started (freeze_startup_objects): what is
        # built by now (modules, the lookups to time) is left out of the garbage
        # collector's full collections, which otherwise walk it every few seconds.
        gc.collect()
        gc.freeze()
        results: dict[str, dict[str, list[int]]] = {}
        try:
            store = MemoryStore()
            for label, chosen in lookups.items():
                extra = lookups[label][: args.warmup]
                results[label] = await measure(
                    store, raw, extra + chosen, settings, warmup=len(extra)
                )
        finally:
            raw.close()
            await db.close()

    rows: list[tuple[str, ...]] = []
    for label, times in results.items():
        for q in (50, 99):
            value = percentile(times["recall"], q)
            verdict = ("PASS" if value <= P99_TARGET_MS else "FAIL") if q == 99 else ""
            rows.append(
                (
                    f"p{q}, {label}",
                    f"{value:.3f} ms",
                    f"{percentile(times['orm'], q):.3f} ms",
                    f"{percentile(times['sql'], q):.3f} ms",
                    f"<= {P99_TARGET_MS:.1f} ms" if q == 99 else "",
                    verdict,
                )
            )
    print_table(
        ("metric", "MemoryStore.recall", "ORM query only", "raw sqlite3", "target", "result"),
        rows,
    )
    shares = Counter[str]()
    for times in results.values():
        shares["recall"] += sum(times["recall"])
        shares["orm"] += sum(times["orm"])
        shares["sql"] += sum(times["sql"])
    total = shares["recall"]
    print()
    print(
        f"  total time (all sets): MemoryStore.recall {total / shares['orm']:.2f} x the ORM "
        f"query alone, {total / shares['sql']:.2f} x the raw SQL alone; "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="memory items stored")
    parser.add_argument("--users", type=int, default=10_000, help="users owning them")
    parser.add_argument(
        "--personas", type=int, default=10, choices=range(1, len(PERSONAS) + 1), metavar="N"
    )
    parser.add_argument("--queries", type=int, default=2000, help="timed lookups per set")
    parser.add_argument("--warmup", type=int, default=200, help="untimed lookups per set")
    parser.add_argument(
        "--cache-dir",
        default=str(Path(tempfile.gettempdir()) / "personae-bench"),
        help="where seeded files are kept between runs",
    )
    parser.add_argument("--no-cache", action="store_true", help="seed a throwaway file")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
