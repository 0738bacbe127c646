"""The processes that run the bot stop as process managers expect: SIGTERM lets
replies in flight finish and exits 0; a bot that dies for good takes
``personae serve --discord`` down with the reason, instead of leaving a web
service beside a dead bot."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from personae.testing.fake_discord import FakeDiscord
from personae.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(tmp_path: Path, ollama: FakeOllama, discord: FakeDiscord) -> dict[str, str]:
    return os.environ | {
        "PERSONAE_CONFIG": "",
        "PERSONAE_DATA_DIR": str(tmp_path / "data"),
        "PERSONAE_OLLAMA__HOST": ollama.url,
        "PERSONAE_DISCORD__TOKEN": "fake-token",
        "PERSONAE_DISCORD__API_BASE": discord.api_base,
        "PERSONAE_DISCORD__GATEWAY_URL": discord.gateway_url,
        "PERSONAE_DISCORD__IDENTIFY_DELAY_SECONDS": "0",
        "PERSONAE_DISCORD__GUILD_READY_TIMEOUT": "0.05",
    }


async def _personae(tmp_path: Path, env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from personae.cli import main; main()", *args,
        env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _finish(process: asyncio.subprocess.Process, timeout: float) -> tuple[int, str]:
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return int(process.returncode or 0), (out + err).decode()


async def test_serve_with_discord_exits_with_the_reason_when_the_bot_dies_for_good(
    tmp_path: Path, fake_ollama: FakeOllama, fake_discord: FakeDiscord
) -> None:
    fake_discord.close_on_identify = 4014  # the Message Content intent is off
    env = _environment(tmp_path, fake_ollama, fake_discord)
    process = await _personae(tmp_path, env, "serve", "--discord", "--port", str(_free_port()))
    code, output = await _finish(process, 60)
    assert code == 1, output
    assert "Traceback" not in output
    [line] = [line for line in output.splitlines() if line.startswith("Error:")]
    assert "Message Content intent" in line


async def test_personae_discord_stops_gracefully_on_sigterm(
    tmp_path: Path, fake_ollama: FakeOllama, fake_discord: FakeDiscord
) -> None:
    env = _environment(tmp_path, fake_ollama, fake_discord)
    process = await _personae(tmp_path, env, "discord")
    try:
        await fake_discord.wait_ready(timeout=60)
    except BaseException:
        process.kill()
        raise
    process.send_signal(signal.SIGTERM)
    code, output = await _finish(process, 60)
    assert code == 0, output
    assert "Traceback" not in output
