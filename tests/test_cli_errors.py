"""Every mistake a new user is likely to make on the command line ends in one
readable line that says what is wrong and what to do, a non-zero exit, and no
traceback. Each test runs the real ``personae`` command in a process of its own,
in an empty folder, with a terminal narrow enough that a wrapped line would show."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from pathlib import Path

import pytest

from personae.testing.fake_ollama import FakeOllama

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def personae(workdir: Path, *args: str, stdin: str = "", **env: str) -> tuple[int, str, str]:
    """Run ``python -m personae ARGS`` in ``workdir``: (exit code, stdout, stderr)."""
    environment = {
        **os.environ,
        "PERSONAE_DATA_DIR": str(workdir / "data"),
        "PERSONAE_OLLAMA__HOST": f"http://127.0.0.1:{free_port()}",
        "PERSONAE_OLLAMA__RETRIES": "0",
        "USER": "tester",
        "LOGNAME": "tester",
        "COLUMNS": "60",
        **env,
    }
    for name in ("PERSONAE_CONFIG", "DISCORD_TOKEN", "PERSONAE_DISCORD__TOKEN"):
        if name not in env:
            environment.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "personae", *args,
        cwd=workdir, env=environment,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return process.returncode or 0, out.decode(), err.decode()


def the_error_line(code: int, out: str, err: str) -> str:
    """The one line of error the command printed; fails unless it printed exactly
    one (on stderr), exited non-zero and showed no traceback."""
    assert code != 0, out + err
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ")
    return lines[0]


async def test_serve_on_a_port_out_of_range_says_which_ports_exist(tmp_path: Path) -> None:
    line = the_error_line(*await personae(tmp_path, "serve", "--port", "99999"))

    assert line == "Error: --port must be between 0 and 65535, not 99999."


async def test_discord_without_a_token_says_where_to_put_one(tmp_path: Path) -> None:
    line = the_error_line(*await personae(tmp_path, "discord"))

    assert "PERSONAE_DISCORD__TOKEN" in line
    assert "token under [discord] in the settings file" in line


async def test_discord_help_shows_the_settings_table_by_name(tmp_path: Path) -> None:
    code, out, _ = await personae(tmp_path, "discord", "--help", COLUMNS="200")

    assert code == 0
    assert "token under [discord] in the settings file" in out


async def test_a_bad_environment_value_is_blamed_on_the_variable_not_the_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "personae.toml").write_text((REPO / "config/personae.toml").read_text())

    line = the_error_line(
        *await personae(tmp_path, "personas", "list", PERSONAE_OLLAMA__RETRIES="lots")
    )

    assert "PERSONAE_OLLAMA__RETRIES" in line
    assert "personae.toml" not in line


async def test_backup_into_a_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "x.db"

    line = the_error_line(*await personae(tmp_path, "db", "backup", str(target)))

    assert f"The folder {target.parent} does not exist" in line
    assert not target.parent.exists()


async def test_memory_export_of_an_unknown_persona_fails_and_writes_no_file(
    tmp_path: Path,
) -> None:
    line = the_error_line(
        *await personae(tmp_path, "memory", "export", "--persona", "nope", "out.jsonl")
    )

    assert "No persona 'nope'" in line and "personae personas list" in line
    assert not (tmp_path / "out.jsonl").exists()


async def test_memory_export_of_an_unknown_user_names_what_it_accepts(tmp_path: Path) -> None:
    line = the_error_line(*await personae(tmp_path, "memory", "export", "--user", "zed", "-"))

    assert "No user 'zed'" in line and "username" in line and "personae users list" in line


async def test_memory_export_takes_a_username(tmp_path: Path) -> None:
    code, out, err = await personae(
        tmp_path, "users", "create", "alice", "--password", "pw long enough", COLUMNS="200"
    )
    assert code == 0, err
    alice_id = int(re.search(r"\(id (\d+)\)", out).group(1))  # type: ignore[union-attr]

    code, out, err = await personae(tmp_path, "memory", "export", "--user", "alice", "-")

    assert code == 0, err
    assert json.loads(out.splitlines()[0])["filter"]["user_id"] == alice_id


async def test_chat_with_ollama_down_is_one_line_without_a_dangling_speaker(
    tmp_path: Path,
) -> None:
    code, out, err = await personae(
        tmp_path, "chat", "-p", "sage", stdin="hello\n",
        PERSONAE_OLLAMA__RETRIES="2", PERSONAE_OLLAMA__RETRY_BACKOFF="0.01",
    )  # fmt: skip

    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: Ollama is not reachable at")
    assert "ollama serve" in lines[0]
    assert "Traceback" not in out + err
    assert "you> Sage:" not in out  # the speaker appears only with a reply
    assert out.count("Sage:") == 1  # the greeting


async def test_doctor_says_an_unreachable_database_is_unreachable(tmp_path: Path) -> None:
    url = f"postgres://postgres@127.0.0.1:{free_port()}/personae"

    code, out, err = await personae(tmp_path, "doctor", PERSONAE_DATABASE_URL=url, COLUMNS="300")

    assert code == 1 and "Traceback" not in out + err
    database = [line for line in out.splitlines() if "database:" in line]
    assert database == [f"FAIL database: {url} is unreachable: connection refused"]
    assert "db migrate" not in out
    assert "start the database server" in out


async def test_doctor_reports_a_missing_persona_folder_and_each_broken_card(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "broken.json").write_text("{not json")
    (cards / "empty.png").write_bytes(b"")
    await personae(tmp_path, "db", "migrate")

    code, out, err = await personae(
        tmp_path, "doctor", COLUMNS="300",
        PERSONAE_OLLAMA__HOST=fake_ollama.url, PERSONAE_PERSONA_DIRS='["cards", "gone"]',
    )  # fmt: skip

    assert code == 1 and "Traceback" not in out + err
    failing = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 3, out
    assert any("broken.json" in line for line in failing)
    assert any("empty.png" in line for line in failing)
    assert any("gone (in persona_dirs) is not a folder" in line for line in failing)
    assert "all ok" not in out


@pytest.mark.parametrize("missing", ["ollama", "model"])
async def test_serve_says_in_one_line_what_is_missing_and_keeps_serving(
    tmp_path: Path, fake_ollama: FakeOllama, missing: str
) -> None:
    port = free_port()
    if missing == "model":
        fake_ollama.models.clear()
        host = fake_ollama.url
    else:
        host = f"http://127.0.0.1:{free_port()}"
    out, err, ready = await _serve_once(tmp_path, port, host)

    assert ready == 503  # serving, and saying it is not ready
    warnings = [line for line in err.splitlines() if line.startswith("Warning:")]
    if missing == "model":
        assert warnings == [
            f"Warning: model llama3.2 is not pulled in Ollama at {host} — run "
            "`ollama pull llama3.2`. Serving anyway; chats fail until then."
        ]
    else:
        assert len(warnings) == 1
        assert warnings[0].startswith(f"Warning: Ollama is not reachable at {host}")
        assert "`ollama serve`" in warnings[0]
    assert f"serving on http://127.0.0.1:{port} — open it in a browser" in out
    assert "the first account created" in out and "becomes the administrator" in out
    assert "Traceback" not in out + err


async def _serve_once(tmp_path: Path, port: int, host: str) -> tuple[str, str, int]:
    """Start ``personae serve``, ask /readyz once it answers, stop it with Ctrl-C."""
    import signal

    import aiohttp

    environment = {
        **os.environ,
        "PERSONAE_DATA_DIR": str(tmp_path / "data"),
        "PERSONAE_OLLAMA__HOST": host,
        "PERSONAE_OLLAMA__RETRIES": "0",
        "COLUMNS": "60",
    }
    environment.pop("PERSONAE_CONFIG", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "personae", "serve", "--port", str(port),
        cwd=tmp_path, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    status = 0
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        status = response.status
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return out.decode(), err.decode(), status
