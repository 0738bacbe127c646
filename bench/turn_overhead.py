"""Per-turn overhead and throughput of the persona runtime, against the bare
``ollama`` client talking to the same fake server in the same run.

Two baselines run side by side: the bare client as it comes (httpx's own
transport, the baseline the targets name), and the same bare client on
personae's transport (aiohttp's connection pool through httpx-aiohttp, see
``personae/core/llm/transport.py``). The runtime gains that transport's savings
over the first; the second shows what the runtime itself adds.

Setup: a temporary SQLite file, migrated, holding 100k memory items (10k in the
scope of each measured conversation: persona ``sage``, users 1..8); a
:class:`~personae.testing.fake_ollama.FakeOllama` on 127.0.0.1 in a child process
(like a real Ollama, it does not share the benchmark's CPU time or event loop)
streams the same scripted reply to both sides.

- **Latency and overhead** (one conversation at a time): a runtime turn and one
  bare ``ollama.AsyncClient.chat(stream=True)`` call per baseline alternate one
  by one (the order rotates every time), the bare calls sending the exact
  messages the runtime sent in steady state. Overhead = runtime latency - bare
  latency of the same round.
- **Throughput** at concurrency 1 and 8 (8 conversations at once): rotating
  blocks of runtime turns and bare calls; a runtime block ends when its
  background work has drained too.

The plugins' background LLM calls (profile extraction, curiosity planning) are
answered with valid JSON that changes nothing. They count in the runtime's
throughput; between sequential pairs they are drained untimed, so the paired
overhead is what a user waits for.

Run ``python bench/turn_overhead.py`` (``--help`` for smaller runs). Exit status
is 0 even when a target is missed; the table says FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as `python bench/turn_overhead.py` from a checkout
    sys.path.insert(0, str(ROOT))

from memory_texts import memory_text, percentile  # noqa: E402  (bench/, beside this file)
from ollama import AsyncClient  # noqa: E402
from tortoise import Tortoise  # noqa: E402

from personae.core.llm.transport import transport  # noqa: E402
from personae.core.runtime import Runtime  # noqa: E402
from personae.core.settings import Settings  # noqa: E402
from personae.core.types import Scope, Turn  # noqa: E402
from personae.storage import Database  # noqa: E402
from personae.testing.fake_ollama import FakeChatRequest, FakeOllama  # noqa: E402

PERSONA = "sage"
OTHER_PERSONAS = ("pip", "scav", "dagoth-ur", "sage")
MEASURED_USERS = 8  # one conversation each; concurrency 8 runs all of them at once
SCOPE_ITEMS = 10_000
TOTAL_ITEMS = 100_000
OTHER_USERS = 200
SEED = 20240611

OVERHEAD_P50_MS = 2.0
OVERHEAD_P99_MS = 10.0
THROUGHPUT_RATIO = 0.5
NOTHING_TO_DO = {"items": [], "ask": False}  # answers to the plugins' JSON-schema calls
BARE = "bare client"
"""The baseline the targets name: ``ollama.AsyncClient`` as it comes."""
SAME = "same transport"
"""The bare client on personae's transport: what the runtime itself adds."""

REPLY = (
    "That sounds like a good plan. Start small: fifteen minutes each morning, the same "
    "time every day, and write down one thing you noticed afterwards. After a week, look "
    "back at your notes and tell me which days felt easiest, and we can build on those. "
    "Would you like a short checklist to keep by the kettle?"
)
MESSAGES = (
    "Do you remember what tea I like? I want to buy some for my sister in Lisbon.",
    "I started running again this week, my knee still hurts a bit though.",
    "My boss asked me to lead the new project, I'm nervous about presenting.",
    "Can you suggest something to cook tonight? I can't eat peanuts, remember.",
    "I finally finished the book about the Roman empire you recommended.",
    "We are planning a trip to Japan in April, any ideas for Kyoto?",
    "My cat Miso knocked over the plant again. How do I stop that?",
    "I want to learn French properly this time. Where should I begin?",
    "Work was rough today, the deadline moved and nobody told me.",
    "Remind me what my brother's kids are called? I always mix them up.",
)

ITEM_SQL = (
    'INSERT INTO "memory_items" ("persona_id", "user_id", "kind", "text", "confidence", '
    '"source_message_ids", "created_at", "updated_at", "uses") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'
)
USER_SQL = 'INSERT INTO "users" ("id", "name", "is_admin", "created_at") VALUES (?, ?, ?, ?)'


# -- statistics and printing -----------------------------------------------------------


def fmt_ms(value: float) -> str:
    return f"{value:.3f} ms"


Row = tuple[str, str, str, str, str, str]


def verdict(ratio: float) -> str:
    return f"{'PASS' if ratio >= THROUGHPUT_RATIO else 'FAIL'} ({ratio:.2f} x)"


def print_table(rows: list[Row]) -> None:
    header = ("metric", "runtime", BARE, SAME, "target", "result")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


# -- the fake Ollama, in its own process -------------------------------------------------


def _serve_fake(conn: Connection, reply: str) -> None:
    """Child process: run FakeOllama on 127.0.0.1 and answer control commands:
    ``("last_chat", text)`` (the body of the last streamed /api/chat request whose
    last message is ``text``), ``"counts"`` (chat streams and structured-output
    calls served so far), ``"clear"`` (forget recorded requests, so memory stays
    flat) and ``"stop"``.

    Streamed chats get ``reply``; structured-output calls (the plugins' background
    work: profile extraction, curiosity planning) get a valid answer that changes
    nothing, so the seeded state stays as it is."""

    def respond(request: FakeChatRequest) -> str:
        if not request.format:
            return reply
        schema = request.format if isinstance(request.format, dict) else {}
        wanted = schema.get("properties", {})
        return json.dumps({key: value for key, value in NOTHING_TO_DO.items() if key in wanted})

    async def serve() -> None:
        counts = {"chat streams": 0, "structured calls": 0}

        def tally() -> None:
            for r in fake.requests_to("/api/chat"):
                counts["structured calls" if r.json.get("format") else "chat streams"] += 1
            fake.requests.clear()

        async with FakeOllama() as fake:
            fake.reply_with(respond)
            conn.send(fake.url)
            loop = asyncio.get_running_loop()
            while True:
                command = await loop.run_in_executor(None, conn.recv)
                if command == "stop":
                    break
                if isinstance(command, tuple) and command[0] == "last_chat":
                    turns = [
                        r.json
                        for r in fake.requests_to("/api/chat")
                        if r.json.get("stream", True)
                        and r.json["messages"][-1]["content"] == command[1]
                    ]
                    conn.send(turns[-1] if turns else None)
                tally()
                if command == "counts":
                    conn.send(dict(counts))
                elif command == "clear":
                    conn.send("cleared")  # the parent waits, so nothing it sends later is lost
        conn.send("stopped")

    asyncio.run(serve())


class FakeProcess:
    def __init__(self, reply: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve_fake, args=(child, reply), daemon=True)
        self.url = ""

    async def start(self) -> None:
        self.process.start()
        self.url = await self._recv(timeout=30)

    async def command(self, command: str | tuple[str, str]) -> Any:
        self.conn.send(command)
        return await self._recv(timeout=30)

    async def _recv(self, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.conn.poll, timeout):
            raise RuntimeError("the fake Ollama process did not answer")
        return self.conn.recv()

    async def stop(self) -> None:
        if self.process.is_alive():
            try:
                await self.command("stop")
            except (OSError, RuntimeError):
                pass
            self.process.join(5)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(5)


# -- seeding -----------------------------------------------------------------------------


def seed_rows(rng: random.Random) -> list[tuple[Any, ...]]:
    """100k items in time order: 10k for each measured (sage, user) scope, the rest
    spread over other users and personas."""
    now = datetime.now(UTC)
    owners: list[tuple[str, int]] = []
    for user in range(1, MEASURED_USERS + 1):
        owners.extend([(PERSONA, user)] * SCOPE_ITEMS)
    rest = TOTAL_ITEMS - len(owners)
    first_other = MEASURED_USERS + 1
    owners.extend(
        (rng.choice(OTHER_PERSONAS), rng.randrange(first_other, first_other + OTHER_USERS))
        for _ in range(rest)
    )
    rng.shuffle(owners)  # a real table interleaves scopes
    rows = []
    for index, (persona, user) in enumerate(owners):
        kind, text = memory_text(rng)
        stamp = str(now - timedelta(seconds=(len(owners) - index) * 300))  # ~1 year, ascending
        confidence = round(rng.uniform(0.5, 1.0), 2)
        rows.append((persona, user, kind, text, confidence, "[]", stamp, stamp, 0))
    return rows


async def seed(url: str) -> float:
    """Migrate, then bulk-insert users and memory items through the Tortoise
    connection (one executemany each). Returns the seconds taken."""
    started = time.perf_counter_ns()
    await Database(url).migrate()
    db = Database(url)
    await db.connect(migrate=False)
    try:
        conn = Tortoise.get_connection("default")
        stamp = str(datetime.now(UTC))
        users = [
            [user, f"user{user}", 0, stamp] for user in range(1, MEASURED_USERS + OTHER_USERS + 1)
        ]
        await conn.execute_many(USER_SQL, users)
        rows = seed_rows(random.Random(SEED))
        for start in range(0, len(rows), 20_000):
            await conn.execute_many(ITEM_SQL, [list(r) for r in rows[start : start + 20_000]])
    finally:
        await db.close()
    return (time.perf_counter_ns() - started) / 1e9


# -- the two sides -----------------------------------------------------------------------


def make_turn(user: int, index: int) -> Turn:
    return Turn(
        user_id=user,
        persona_id=PERSONA,
        text=MESSAGES[index % len(MESSAGES)],
        conversation=f"bench-{user}",
        user_name="Alex",
    )


async def runtime_turn(runtime: Runtime, user: int, index: int) -> int:
    """One runtime turn; nanoseconds until the stored reply is complete."""
    started = time.perf_counter_ns()
    reply = await runtime.reply(make_turn(user, index))
    elapsed = time.perf_counter_ns() - started
    if not reply.text:
        raise RuntimeError("empty reply")
    return elapsed


async def bare_call(client: AsyncClient, body: dict[str, Any]) -> int:
    """One streamed chat through the bare ollama client; nanoseconds until done."""
    started = time.perf_counter_ns()
    parts: list[str] = []
    stream = await client.chat(
        model=body["model"],
        messages=body["messages"],
        stream=True,
        options=body.get("options"),
        keep_alive=body.get("keep_alive"),
    )
    async for part in stream:
        if part.message.content:
            parts.append(part.message.content)
    elapsed = time.perf_counter_ns() - started
    if not "".join(parts).strip():
        raise RuntimeError("empty reply")
    return elapsed


async def paired(
    runtime: Runtime,
    clients: dict[str, AsyncClient],
    bodies: dict[int, dict[str, Any]],
    pairs: int,
) -> dict[str, list[int]]:
    """Sequential runtime turns and bare calls on each client, one by one in an
    order that rotates every round; each side's latencies, round by round."""
    latencies: dict[str, list[int]] = {"runtime": [], **{name: [] for name in clients}}
    sides = list(latencies)
    for index in range(pairs):
        user = index % MEASURED_USERS + 1
        shift = index % len(sides)
        for side in sides[shift:] + sides[:shift]:
            if side == "runtime":
                latencies[side].append(await runtime_turn(runtime, user, index))
                await runtime.background.drain()
            else:
                latencies[side].append(await bare_call(clients[side], bodies[user]))
    return latencies


async def block(
    workers: int, per_worker: int, one: Callable[[int, int], Awaitable[int]]
) -> list[int]:
    """``workers`` conversations at once, ``per_worker`` calls each in sequence;
    returns each call's latency."""
    latencies: list[int] = []

    async def worker(user: int) -> None:
        for index in range(per_worker):
            latencies.append(await one(user, index))

    await asyncio.gather(*(worker(user) for user in range(1, workers + 1)))
    return latencies


async def throughput(
    runtime: Runtime,
    clients: dict[str, AsyncClient],
    bodies: dict[int, dict[str, Any]],
    fake: FakeProcess,
    *,
    workers: int,
    per_worker: int,
    rounds: int,
) -> dict[str, Any]:
    """Rotating blocks; turns/s of each side over all its blocks, and each call's
    latency."""

    def one_for(side: str) -> Callable[[int, int], Awaitable[int]]:
        if side == "runtime":
            return lambda user, index: runtime_turn(runtime, user, index)
        return lambda user, index: bare_call(clients[side], bodies[user])

    sides = ["runtime", *clients]
    totals = dict.fromkeys(sides, 0)
    latencies: dict[str, list[int]] = {side: [] for side in sides}
    for number in range(rounds):
        shift = number % len(sides)
        for side in sides[shift:] + sides[:shift]:
            started = time.perf_counter_ns()
            lat = await block(workers, per_worker, one_for(side))
            if side == "runtime":
                await runtime.background.drain()
            totals[side] += time.perf_counter_ns() - started
            latencies[side].extend(lat)
        await fake.command("clear")
    count = workers * per_worker * rounds
    return {
        "rates": {side: count / (totals[side] / 1e9) for side in sides},
        "latencies": latencies,
        "count": count,
    }


# -- main --------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    fake = FakeProcess(REPLY)
    with tempfile.TemporaryDirectory(prefix="personae-bench-") as tmp:
        url = f"sqlite://{Path(tmp) / 'bench.db'}"
        await fake.start()
        runtime: Runtime | None = None
        clients: dict[str, AsyncClient] = {}
        try:
            seconds = await seed(url)
            extra: dict[str, Any] = {}
            if args.no_learn:
                extra["plugin_settings"] = {"profile": {"learn": False}}
            settings = Settings(
                data_dir=Path(tmp) / "data", database_url=url, ollama={"host": fake.url}, **extra
            )
            runtime = Runtime(settings, load_entry_points=False)
            await runtime.start()
            clients[BARE] = AsyncClient(host=fake.url)
            clients[SAME] = AsyncClient(
                host=fake.url, transport=transport(settings.ollama.max_connections)
            )

            # Warm-up: fill each conversation's history to its steady-state length,
            # then capture the exact request the runtime sends for it.
            bodies: dict[int, dict[str, Any]] = {}
            warm_turns = settings.memory.history_messages // 2 + 2
            for user in range(1, MEASURED_USERS + 1):
                for index in range(warm_turns):
                    await runtime_turn(runtime, user, index)
                await fake.command("clear")
                await runtime_turn(runtime, user, warm_turns)
                bodies[user] = await fake.command(("last_chat", make_turn(user, warm_turns).text))
                if bodies[user] is None:
                    raise RuntimeError("the fake Ollama did not see the runtime's chat request")
            for user in range(1, MEASURED_USERS + 1):
                for client in clients.values():
                    for _ in range(5):
                        await bare_call(client, bodies[user])
            await runtime.background.drain()
            await fake.command("clear")

            body = bodies[1]
            prompt_chars = sum(len(m["content"]) for m in body["messages"])
            memory_lines = body["messages"][0]["content"].count("\n- (")
            print("personae turn overhead benchmark")
            print(
                f"  python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
                f"{os.cpu_count()} CPUs, {platform.machine()}, load average "
                f"{os.getloadavg()[0]:.2f} at start"
            )
            print(
                f"  SQLite temp file: {TOTAL_ITEMS:,} memory items "
                f"({SCOPE_ITEMS:,} in each measured scope {PERSONA!r} x users 1..{MEASURED_USERS}),"
                f" seeded in {seconds:.1f}s"
            )
            print(
                f"  request per turn: {len(body['messages'])} messages, {prompt_chars:,} chars "
                f"({memory_lines} recalled items); reply: {len(REPLY.split())} streamed chunks"
            )
            print(
                f"  fake Ollama at {fake.url} (child process); sequential pairs: {args.pairs}; "
                f"throughput: {args.rounds} alternating rounds of {args.block} calls per side"
            )
            print()

            sequential = await paired(runtime, clients, bodies, args.pairs)
            await fake.command("clear")

            seq = await throughput(
                runtime,
                clients,
                bodies,
                fake,
                workers=1,
                per_worker=args.block,
                rounds=args.rounds,
            )
            conc = await throughput(
                runtime,
                clients,
                bodies,
                fake,
                workers=MEASURED_USERS,
                per_worker=max(1, args.block // MEASURED_USERS),
                rounds=args.rounds,
            )
            served = await fake.command("counts")
            left = await runtime.memory.count(Scope(PERSONA, 1))
        finally:
            for client in clients.values():
                await client.close()
            if runtime is not None:
                await runtime.stop()
            await fake.stop()

    rows: list[Row] = []
    for q in (50, 99):
        rows.append(
            (
                f"latency p{q}, sequential",
                *(fmt_ms(percentile(sequential[side], q)) for side in ("runtime", BARE, SAME)),
                "",
                "",
            )
        )
    for q, target in ((50, OVERHEAD_P50_MS), (99, OVERHEAD_P99_MS)):
        over = {
            side: percentile(
                [r - b for r, b in zip(sequential["runtime"], sequential[side], strict=True)], q
            )
            for side in (BARE, SAME)
        }
        rows.append(
            (
                f"overhead p{q} (paired difference)",
                "",
                fmt_ms(over[BARE]),
                fmt_ms(over[SAME]),
                f"<= {target:.1f} ms",
                " / ".join("PASS" if over[side] <= target else "FAIL" for side in (BARE, SAME)),
            )
        )
    for label, result in (("1 conversation", seq), (f"{MEASURED_USERS} concurrent", conc)):
        rates = result["rates"]
        ratios = {side: rates["runtime"] / rates[side] for side in (BARE, SAME)}
        rows.append(
            (
                f"throughput, {label} (turns/s)",
                f"{rates['runtime']:.1f}",
                f"{rates[BARE]:.1f}",
                f"{rates[SAME]:.1f}",
                f">= {THROUGHPUT_RATIO} x baseline",
                " / ".join(verdict(ratios[side]) for side in (BARE, SAME)),
            )
        )
    lat = conc["latencies"]
    for q in (50, 99):
        rows.append(
            (
                f"latency p{q}, {MEASURED_USERS} concurrent",
                *(fmt_ms(percentile(lat[side], q)) for side in ("runtime", BARE, SAME)),
                "",
                "",
            )
        )
    print_table(rows)
    print(f"  result: against the {BARE} / against the {SAME}")
    print()
    print(
        f"  fake Ollama served {served['chat streams']:,} chat streams and "
        f"{served['structured calls']:,} structured-output calls (background plugin work"
        f"{', profile learning off' if args.no_learn else ''}); measured scope still holds "
        f"{left:,} items; load average {os.getloadavg()[0]:.2f} at the end"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1000, help="sequential measured pairs")
    parser.add_argument("--rounds", type=int, default=4, help="alternating throughput rounds")
    parser.add_argument(
        "--block", type=int, default=160, help="calls per side per throughput block"
    )
    parser.add_argument(
        "--no-learn",
        action="store_true",
        help="turn off the profile plugin's background learning (on by default, as deployed)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
