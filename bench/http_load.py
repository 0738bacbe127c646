"""Load benchmark of the HTTP chat service: concurrent SSE chats against the fake
Ollama, side by side with a bare aiohttp handler that streams the same fake
Ollama reply through the same ``ollama`` client, measured in the same run.

    python bench/http_load.py [--requests 400] [--concurrency 50] [--chunks 20]

Three phases, each printing requests/s and the p50/p99 time to the first event
for each server, and the overhead personae adds (targets: >= 0.5x the bare
throughput, first-event overhead p99 <= 10 ms). In the first two, each round
starts its ``concurrency`` chats in the same instant; that burst is most of the
slowest 1%, so the p99 is also shown for the chats after it ("after the start"),
which arrive as others end. With streamed replies of one length, though, the
chats of a burst also end together, so the next ones arrive as a burst too, and
every first event waits for the work of up to ``concurrency`` requests that
arrived with it. Both servers also report how long a request
ran in the server before it called the model ("in server before model"): what
personae does first (authenticate, find the persona and the history, gather the
plugins' prompt sections), against the bare handler's reading of the body.

- saturated: the fake model answers instantly, so the servers are CPU-bound and
  requests/s is their capacity (time to first event is then mostly queueing);
- streaming: the fake model streams like a real one (a chunk every 50 ms), so
  the servers are not saturated; time to first event is the overhead of a
  request plus its wait behind the others of its burst;
- streaming, spread: the same, with each round's first chats starting evenly
  over one reply's length, so that ``concurrency`` chats are in flight but
  arrive one by one, as users' messages do: time to first event is the
  overhead of a request with the others' streams running beside it.

Two bare handlers run beside personae: one with the ``ollama`` client as it comes
(httpx's own transport; the baseline the targets name), one with the same client
on personae's transport (aiohttp's connection pool through httpx-aiohttp, see
``personae/core/llm/transport.py``). personae gains that transport's savings over
the first; the second shows what personae itself adds.

The servers run in a child process, the fake Ollama in a process of its own (as
a real Ollama is: its work on each request, parsing personae's longer prompts
too, is not the servers'), and the load in this one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import functools
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPLY_WORD = "lorem "
LEARNERS = ("profile", "curiosity", "voice")
"""Plugins that do slow work (more LLM calls) after each reply; off by default so
the figures measure the service, not the fake model's extra load."""
EXAMPLES = ("mood",)
"""The example third-party plugin a development install adds; not part of personae."""

_STARTED: contextvars.ContextVar[float | None] = contextvars.ContextVar("started", default=None)
_APP: contextvars.ContextVar[str] = contextvars.ContextVar("app", default="")
SIDES = ("bare", "same", "personae")
"""The bare handler (client as it comes), the bare handler on personae's transport,
personae."""
TITLES = {"bare": "bare aiohttp", "same": "same transport", "personae": "personae"}
BEFORE_MODEL: dict[str, list[float]] = {side: [] for side in SIDES}
"""Per server: seconds from a request's arrival to its call of the model."""


def timed(name: str) -> Any:
    """A middleware that notes when a request arrived, for :func:`watch_model_calls`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        _STARTED.set(time.perf_counter())
        _APP.set(name)
        return await handler(request)

    return middleware


def watch_model_calls() -> None:
    """Record, for all servers alike, how long a request ran before it asked the
    ``ollama`` client to send the model its request (``AsyncClient._request``,
    which ``AsyncClient.chat`` calls and personae calls directly with a body it
    built itself): what each does before the model is asked."""
    import ollama

    request = ollama.AsyncClient._request

    @functools.wraps(request)  # its signature too: personae checks it
    async def watched(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = _STARTED.get()
        if started is not None:
            BEFORE_MODEL[_APP.get()].append(time.perf_counter() - started)
            _STARTED.set(None)  # only the reply's call, not later ones
        return await request(self, *args, **kwargs)

    ollama.AsyncClient._request = watched  # type: ignore[method-assign]


# -- the servers (child process) -------------------------------------------------------


def bare_app(ollama_url: str, name: str) -> web.Application:
    """The baseline: authenticate nothing, store nothing, stream Ollama as SSE."""
    import ollama

    from personae.core.llm.transport import transport
    from personae.core.settings import OllamaSettings

    same = {"transport": transport(OllamaSettings().max_connections)}
    extra = same if name == "same" else {}
    client = ollama.AsyncClient(host=ollama_url, **extra)

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        messages = [{"role": "user", "content": body["message"]}]
        async for part in await client.chat(model="llama3.2", messages=messages, stream=True):
            text = part.message.content or ""
            if not response.prepared:  # headers go out with the first event
                await response.prepare(request)
            await response.write(f"event: chunk\ndata: {json.dumps({'text': text})}\n\n".encode())
        await response.write(b"event: done\ndata: {}\n\n")
        return response

    app = web.Application(middlewares=[timed(name)])
    app.router.add_post("/chat", chat)
    return app


async def serve(pipe: Connection, fake_url: str, learning: bool) -> None:
    from argon2 import PasswordHasher

    from personae.adapters.web import init_app
    from personae.adapters.web.app import freeze_startup_objects
    from personae.core.settings import Settings
    from personae.storage.accounts import AccountStore

    logging_off()
    watch_model_calls()
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            data_dir=Path(folder),
            disabled_plugins=[*EXAMPLES, *([] if learning else LEARNERS)],
            ollama={"host": fake_url},
            web={
                "chat_rate_per_minute": 0,
                "login_rate_per_minute": 0,
                "signup_rate_per_minute": 0,
                "signup_global_rate_per_minute": 0,
            },
        )
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        runners = []
        ports = []
        personae_app = init_app(settings, accounts=AccountStore(hasher))
        personae_app.middlewares.insert(0, timed("personae"))
        personae_app.on_startup.append(freeze_startup_objects)  # as `personae serve` does
        for app in (bare_app(fake_url, "bare"), bare_app(fake_url, "same"), personae_app):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
            runners.append(runner)
            ports.append(runner.addresses[0][1])
        pipe.send(ports)
        while await loop.run_in_executor(None, pipe.recv) != "stop":  # "timings"
            pipe.send({name: list(values) for name, values in BEFORE_MODEL.items()})
            for values in BEFORE_MODEL.values():
                values.clear()
        for runner in reversed(runners):
            await runner.cleanup()


def fake_main(pipe: Connection, chunks: int) -> None:
    """The fake Ollama in a process of its own, as a real Ollama is: its work on
    each request (parsing personae's longer prompts, too) is not the servers'."""

    async def run() -> None:
        from personae.testing.fake_ollama import FakeOllama

        logging_off()
        async with FakeOllama() as fake:
            fake.requests = Unrecorded()
            fake.reply_with([REPLY_WORD] * chunks)
            pipe.send(fake.url)
            loop = asyncio.get_running_loop()
            while (command := await loop.run_in_executor(None, pipe.recv)) != "stop":
                fake.chunk_delay = float(command)
                pipe.send("ok")

    asyncio.run(run())


class Unrecorded(list[Any]):
    """The fake Ollama's record of requests, kept empty: nothing inspects it here,
    and a record of every request would grow the servers' heap as the run goes."""

    def append(self, item: Any) -> None:
        pass


def logging_off() -> None:
    import logging

    logging.disable(logging.WARNING)


def server_main(pipe: Connection, fake_url: str, learning: bool) -> None:
    asyncio.run(serve(pipe, fake_url, learning))


# -- the load (this process) -----------------------------------------------------------


@dataclass
class Result:
    name: str
    seconds: float
    first_event: list[float]
    errors: int
    steady: list[float]
    """First events of the chats after each round's first ``concurrency``, which
    all start in the same instant."""

    @property
    def rate(self) -> float:
        return len(self.first_event) / self.seconds

    def percentile(self, p: float) -> float:
        return percentile(self.first_event, p)


async def one_chat(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]
) -> float | None:
    started = time.perf_counter()
    first: float | None = None
    async with session.post(url, json=body, headers=headers) as response:
        if response.status != 200:
            await response.read()
            return None
        done = False
        async for line in response.content:
            if first is None and line.startswith(b"data:"):
                first = time.perf_counter() - started
            if line.startswith(b"event: done"):
                done = True
        return first if done else None


async def load(
    name: str,
    url: str,
    headers: dict[str, str],
    requests: int,
    concurrency: int,
    spread: float = 0.0,
) -> Result:
    """``requests`` chats, ``concurrency`` at a time. The first ``concurrency``
    start together, or with ``spread`` evenly over that many seconds."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    timings: list[float] = []
    steady: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(n: int) -> None:
            nonlocal errors
            body = {"message": "hello there", "stream": True, "conversation": f"bench-{n}"}
            await asyncio.sleep(spread * n / concurrency)
            while not queue.empty():
                index = queue.get_nowait()
                try:
                    value = await one_chat(session, url, body, headers)
                except aiohttp.ClientError:
                    value = None
                if value is None:
                    errors += 1
                else:
                    timings.append(value)
                    if index >= concurrency:
                        steady.append(value)

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        seconds = time.perf_counter() - started
    return Result(name, seconds, timings, errors, steady)


async def token(base: str) -> str:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        body = {"username": "bench", "password": "bench password"}
        async with session.post(f"{base}/api/auth/signup", json=body) as response:
            csrf = (await response.json())["csrf_token"]
        async with session.post(
            f"{base}/api/tokens", json={"name": "bench"}, headers={"X-CSRF-Token": csrf}
        ) as response:
            return str((await response.json())["token"])


async def run(
    args: argparse.Namespace, ports: list[int], pipe: Connection, fake: Connection
) -> None:
    base = f"http://127.0.0.1:{ports[2]}"
    auth = {"Authorization": f"Bearer {await token(base)}"}
    targets = {
        "bare": (f"http://127.0.0.1:{ports[0]}/chat", {}),
        "same": (f"http://127.0.0.1:{ports[1]}/chat", {}),
        "personae": (f"{base}/api/personas/sage/chat", auth),
    }
    warm = max(args.concurrency, args.requests // 10)
    for url, headers in targets.values():
        await load("warm-up", url, headers, warm, args.concurrency)
    reply_seconds = args.chunks * args.chunk_delay
    phases = [
        ("saturated: the fake model answers at once", 0.0, args.requests, 0.0),
        (
            f"streaming: the fake model sends a chunk every {args.chunk_delay * 1000:g} ms",
            args.chunk_delay,
            args.paced_requests,
            0.0,
        ),
        (
            f"streaming, spread: as above, the first {args.concurrency} chats starting "
            f"evenly over one reply's length ({reply_seconds:g} s)",
            args.chunk_delay,
            args.paced_requests,
            reply_seconds,
        ),
    ]
    for title, delay, requests, spread in phases:
        fake.send(str(delay))
        fake.recv()
        pipe.send("timings")
        pipe.recv()  # forget the warm-up's
        results = []
        for number in range(args.rounds):  # rotate, so drift hits all alike
            shift = number % len(SIDES)
            for side in SIDES[shift:] + SIDES[:shift]:
                url, headers = targets[side]
                results.append(await load(side, url, headers, requests, args.concurrency, spread))
        pipe.send("timings")
        report(title, args, requests, results, pipe.recv(), spread)


def merge(name: str, results: list[Result]) -> Result:
    parts = [r for r in results if r.name == name]
    return Result(
        name,
        sum(r.seconds for r in parts),
        [t for r in parts for t in r.first_event],
        sum(r.errors for r in parts),
        [t for r in parts for t in r.steady],
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


def report(
    title: str,
    args: argparse.Namespace,
    requests: int,
    results: list[Result],
    before_model: dict[str, list[float]],
    spread: float,
) -> None:
    merged = {side: merge(side, results) for side in SIDES}
    personae = merged["personae"]
    print(f"\n== {title}")
    print(
        f"{requests * args.rounds} SSE chats per side, {args.concurrency} at once, "
        f"{args.chunks} chunks per reply, fake Ollama on loopback; learning plugins "
        f"{'on' if args.with_learning else 'off'}"
    )

    def line(label: str, values: list[float], spec: str = ".2f") -> None:
        print(f"{label:28}" + "".join(f"{value:>16{spec}}" for value in values))

    print(f"{'':28}" + "".join(f"{TITLES[side]:>16}" for side in SIDES))
    line("requests/s", [merged[side].rate for side in SIDES], ".1f")
    for p in (50, 99):
        line(f"time to first event p{p} (ms)", [merged[side].percentile(p) for side in SIDES])
    for p in (50, 99):
        line(f"in server before model p{p}", [percentile(before_model[s], p) for s in SIDES])
    for p in (50, 99):
        line(f"  after the start, p{p}", [percentile(merged[s].steady, p) for s in SIDES])
    print(f"{'errors':28}" + "".join(f"{merged[side].errors:>16}" for side in SIDES))
    line("mean first event (ms)", [statistics.mean(merged[s].first_event) * 1000 for s in SIDES])
    for side in ("bare", "same"):
        base = merged[side]
        ratio = personae.rate / base.rate
        overhead50 = personae.percentile(50) - base.percentile(50)
        overhead99 = personae.percentile(99) - base.percentile(99)
        steady99 = percentile(personae.steady, 99) - percentile(base.steady, 99)
        print(f"against {TITLES[side]}:")
        print(
            f"  throughput ratio: {ratio:.2f}x ({'PASS' if ratio >= 0.5 else 'FAIL'}, "
            "target >= 0.5x)"
        )
        print(
            f"  first-event overhead: p50 {overhead50:+.2f} ms, p99 {overhead99:+.2f} ms "
            f"({'PASS' if overhead99 <= 10 else 'FAIL'}, target p99 <= 10 ms)"
        )
        print(f"  after the start: p99 {steady99:+.2f} ms")
    if spread:
        print(
            f"(each round's first {args.concurrency} chats start {spread:g} s apart in all; "
            "the rest arrive as others end, so arrivals stay spread)"
        )
    else:
        print(
            f"(each round's first {args.concurrency} chats start in the same instant; "
            "the rest arrive as others end)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="chats per side and round")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=20, help="chunks per fake reply")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per phase")
    parser.add_argument(
        "--paced-requests", type=int, default=200, help="chats per side and round, streaming phase"
    )
    parser.add_argument(
        "--chunk-delay", type=float, default=0.05, help="seconds between chunks, streaming phase"
    )
    parser.add_argument(
        "--with-learning", action="store_true", help=f"keep {', '.join(LEARNERS)} plugins on"
    )
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    fake, fake_end = multiprocessing.Pipe()
    fake_process = spawn.Process(target=fake_main, args=(fake_end, args.chunks), daemon=True)
    fake_process.start()
    parent, child = multiprocessing.Pipe()
    process: Any = None
    try:
        if not fake.poll(60):
            sys.exit("the fake Ollama did not start")
        process = spawn.Process(
            target=server_main, args=(child, fake.recv(), args.with_learning), daemon=True
        )
        process.start()
        if not parent.poll(60):
            sys.exit("the servers did not start")
        asyncio.run(run(args, parent.recv(), parent, fake))
    finally:
        for pipe, child_process in ((parent, process), (fake, fake_process)):
            if child_process is None:
                continue
            pipe.send("stop")
            child_process.join(30)
            if child_process.is_alive():
                child_process.terminate()


if __name__ == "__main__":
    main()
