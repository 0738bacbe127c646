"""Time to first audio: speaking a reply sentence by sentence while it streams,
against synthesising the whole reply at once, in the same run, with the same
text and the same engine.

Setup: a runtime (temporary SQLite, the built-in plugins) whose LLM is a
:class:`~personae.testing.fake_ollama.FakeOllama` on 127.0.0.1 streaming a
fixed ~90-word reply word by word at ``--token-ms`` per token (a local model's
pace); the voice service of the voice plugin; the engine is real espeak-ng, and
with ``--elevenlabs`` also the loopback fake ElevenLabs, which answers after a
fixed ``--cloud-latency-ms`` (its timings show the pipeline, not ElevenLabs).

For each run, both ways start at the reply's first token:

- **streamed**: every chunk goes into ``VoiceService.speak``; first audio =
  first :class:`AudioChunk` ready; all audio = last chunk ready.
- **whole at once**: the reply is collected, then ``VoiceService.synthesize``
  speaks it in one engine call; first audio = all audio = that call's end.
  "synthesis only" is the engine call by itself.

Runs alternate (the order flips every pair); medians are printed. Run
``python bench/tts_first_audio.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as `python bench/tts_first_audio.py` from a checkout
    sys.path.insert(0, str(ROOT))

from personae.core.runtime import Runtime  # noqa: E402
from personae.core.settings import Settings  # noqa: E402
from personae.core.types import Turn  # noqa: E402
from personae.plugins.voice import VoiceChoice, VoiceService, get_voice_service  # noqa: E402
from personae.testing.fake_elevenlabs import FakeElevenLabs  # noqa: E402
from personae.testing.fake_ollama import FakeOllama, split_words  # noqa: E402

REPLY = (
    "That sounds like a good plan. Start small: fifteen minutes each morning, at the same "
    "time every day. Write down one thing you noticed afterwards, even if it seems "
    "trivial. After a week, look back at your notes and tell me which days felt easiest. "
    "We can build on those together, one habit at a time. Would you like a short "
    "checklist to keep by the kettle? I can also remind you on Sunday evenings, if that "
    "helps you plan the week ahead."
)


async def streamed(
    runtime: Runtime, voice: VoiceService, choice: VoiceChoice, n: int
) -> dict[str, float]:
    stream = runtime.stream(Turn(1, "sage", "Any advice?", conversation=f"bench-{n}"))
    speech = voice.speak(choice, None)
    marks: dict[str, float] = {}

    async def listen() -> None:
        async for _ in speech:
            marks.setdefault("first_audio", time.perf_counter())
            marks["all_audio"] = time.perf_counter()

    listener = asyncio.create_task(listen())
    async for chunk in stream:
        marks.setdefault("first_token", time.perf_counter())
        speech.feed(chunk)
    marks["reply_end"] = time.perf_counter()
    speech.end()
    await listener
    if speech.note:
        raise RuntimeError(speech.note)
    start = marks["first_token"]
    return {key: value - start for key, value in marks.items() if key != "first_token"}


async def whole(
    runtime: Runtime, voice: VoiceService, choice: VoiceChoice, n: int
) -> dict[str, float]:
    stream = runtime.stream(Turn(1, "sage", "Any advice?", conversation=f"bench-{n}"))
    first_token = None
    parts = []
    async for chunk in stream:
        first_token = first_token or time.perf_counter()
        parts.append(chunk)
    reply_end = time.perf_counter()
    await voice.synthesize("".join(parts), choice, None)
    done = time.perf_counter()
    assert first_token is not None
    return {
        "reply_end": reply_end - first_token,
        "first_audio": done - first_token,
        "all_audio": done - first_token,
        "synth_only": done - reply_end,
    }


async def measure(
    runtime: Runtime, voice: VoiceService, choice: VoiceChoice, runs: int
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    ways: list[tuple[str, Callable[..., Awaitable[dict[str, float]]]]] = [
        ("streamed", streamed),
        ("whole", whole),
    ]
    results: dict[str, list[dict[str, float]]] = {"streamed": [], "whole": []}
    await streamed(runtime, voice, choice, -1)  # warm up: first subprocess, first request
    for n in range(runs):
        order = ways if n % 2 == 0 else ways[::-1]
        for name, way in order:
            results[name].append(await way(runtime, voice, choice, n))
    return results["streamed"], results["whole"]


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def print_row(engine: str, way: str, rows: list[dict[str, float]]) -> None:
    cells = [fmt(median(rows, key)) for key in ("first_audio", "all_audio", "reply_end")]
    cells.append(fmt(median(rows, "synth_only")) if "synth_only" in rows[0] else " " * 11)
    print(f"{engine:<12} {way:<15} {' '.join(cells)}")


def espeak_version_line() -> str:
    result = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False)
    return result.stdout.split(" Data")[0].strip()


async def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    words = len(split_words(REPLY))
    async with (
        FakeOllama() as ollama,
        FakeElevenLabs(api_key="bench", delay=args.cloud_latency_ms / 1000) as cloud,
    ):
        ollama.reply_with(REPLY)
        ollama.chunk_delay = args.token_ms / 1000
        with tempfile.TemporaryDirectory() as folder:
            voice_settings: dict[str, Any] = {"daily_quota_seconds": None}
            if args.elevenlabs:
                voice_settings["elevenlabs"] = {"api_key": "bench", "base_url": cloud.url}
            settings = Settings(
                data_dir=Path(folder),
                database_url=f"sqlite://{Path(folder) / 'bench.db'}",
                ollama={"host": ollama.url, "read_timeout": 30.0},
                disabled_plugins=["profile", "curiosity"],
                plugin_settings={"voice": voice_settings},
            )
            async with Runtime(settings, load_entry_points=False) as runtime:
                await runtime.users.create("Bench")
                voice = get_voice_service(runtime)
                assert voice is not None
                choices = [VoiceChoice("espeak", "en-us", "preset")]
                if args.elevenlabs:
                    choices.append(VoiceChoice("elevenlabs", "21m00Tcm4TlvDq8ikWAM", "preset"))
                espeak_version = await asyncio.to_thread(espeak_version_line)
                print("personae time-to-first-audio benchmark")
                print(
                    f"python {platform.python_version()}, {platform.machine()}, {espeak_version}; "
                    f"reply: {len(REPLY)} chars, {words} tokens at {args.token_ms:g} ms/token, "
                    f"{args.runs} runs per way, medians"
                )
                if args.elevenlabs:
                    print(f"fake ElevenLabs answers after {args.cloud_latency_ms:g} ms per request")
                print()
                header = (
                    f"{'engine':<12} {'way':<15} {'first audio':>11} {'all audio':>11} "
                    f"{'reply end':>11} {'synth only':>11}"
                )
                print(header)
                print("-" * len(header))
                for choice in choices:
                    stream_rows, whole_rows = await measure(runtime, voice, choice, args.runs)
                    print_row(choice.engine, "streamed", stream_rows)
                    print_row("", "whole at once", whole_rows)
                    ratio = median(whole_rows, "first_audio") / median(stream_rows, "first_audio")
                    print(f"{'':<12} first audio {ratio:.1f}x sooner when streamed")
                print()
                print("times are from the reply's first token; 'reply end' = last token received")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per way (default 7)")
    parser.add_argument(
        "--token-ms", type=float, default=25.0, help="LLM pace, ms per token (default 25)"
    )
    parser.add_argument(
        "--elevenlabs", action="store_true", help="also measure the fake ElevenLabs engine"
    )
    parser.add_argument(
        "--cloud-latency-ms",
        type=float,
        default=300.0,
        help="fake ElevenLabs latency per request (default 300)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
