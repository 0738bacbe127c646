"""The `personae` command, run as a user runs it: a real process, real files,
a real SQLite database and the fake Ollama over a socket."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from personae.core.cards import load_card
from personae.testing.fake_ollama import FakeOllama
from tests.conftest import reply_prompts


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


async def personae(
    workdir: Path, fake_url: str, *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "PERSONAE_DATA_DIR": str(workdir / "data"),
        "PERSONAE_OLLAMA__HOST": fake_url,
        "PERSONAE_OLLAMA__RETRIES": "0",
        "PERSONAE_OLLAMA__CONNECT_TIMEOUT": "1",
        "USER": "tester",
        "LOGNAME": "tester",
        "COLUMNS": "200",
    }
    env.pop("PERSONAE_CONFIG", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "personae",
        *args,
        cwd=workdir,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_chat_streams_a_reply_and_remembers_the_conversation(
    workdir: Path, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with("Well met, traveller.")
    code, out, err = await personae(
        workdir, fake_ollama.url, "chat", "--persona", "sage", stdin="hello there\n/quit\n"
    )
    assert code == 0, err
    assert "Well met, traveller." in out
    assert (workdir / "data" / "personae.db").exists()
    code, out, _ = await personae(
        workdir, fake_ollama.url, "chat", "-p", "sage", stdin="and again\n"
    )
    prompt = reply_prompts(fake_ollama)[-1].json["messages"]
    assert [m["content"] for m in prompt[-3:]] == [
        "hello there",
        "Well met, traveller.",
        "and again",
    ]


async def test_chat_commands_run_in_the_terminal(workdir: Path, fake_ollama: FakeOllama) -> None:
    code, out, err = await personae(
        workdir, fake_ollama.url, "chat", "-p", "scav", stdin="/help\n/profile\n"
    )
    assert code == 0, err
    assert "/profile" in out and "/forget" in out
    assert "does not remember anything about you yet" in out


async def test_ollama_down_is_one_clear_line_without_a_traceback(workdir: Path) -> None:
    code, out, err = await personae(
        workdir, "http://127.0.0.1:9", "chat", "-p", "sage", stdin="hello\n"
    )
    assert "Ollama is not reachable at http://127.0.0.1:9" in err
    assert "Traceback" not in out + err


async def test_unknown_persona_exits_with_a_clear_error(
    workdir: Path, fake_ollama: FakeOllama
) -> None:
    code, out, err = await personae(workdir, fake_ollama.url, "chat", "-p", "nobody")
    assert code == 1
    assert "No persona 'nobody'" in err and "Traceback" not in err


async def test_personas_import_show_list_and_export_round_trip(
    workdir: Path, fake_ollama: FakeOllama
) -> None:
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "Captain Verity",
            "description": "{{char}} is a retired sea captain.",
            "personality": "gruff, kind",
            "scenario": "A harbour tavern.",
            "first_mes": "Sit down, {{user}}.",
            "mes_example": "<START>\n{{user}}: Hi\n{{char}}: Ahoy.",
            "tags": ["sea"],
            "extensions": {"depth_prompt": {"depth": 4, "prompt": "salt"}, "chub": {"id": 7}},
        },
    }
    (workdir / "verity.json").write_text(json.dumps(card))
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "import", "verity.json")
    assert code == 0, err
    assert "captain-verity" in out
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "list")
    assert "captain-verity" in out and "sage" in out and "dagoth-ur" in out
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "show", "captain-verity")
    assert code == 0 and "retired sea captain" in out
    for name in ("out.json", "out.png"):
        code, _, err = await personae(
            workdir, fake_ollama.url, "personas", "export", "captain-verity", name
        )
        assert code == 0, err
        exported = load_card(workdir / name)
        assert exported.name == "Captain Verity"
        assert exported.extensions["depth_prompt"] == {"depth": 4, "prompt": "salt"}
        assert exported.extensions["chub"] == {"id": 7}


async def test_importing_a_broken_card_says_why(workdir: Path, fake_ollama: FakeOllama) -> None:
    (workdir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "import", "broken.png")
    assert code == 1 and "Error:" in err and "Traceback" not in err


async def test_db_migrate_then_reports_up_to_date(workdir: Path, fake_ollama: FakeOllama) -> None:
    code, out, err = await personae(workdir, fake_ollama.url, "db", "migrate")
    assert code == 0, err
    assert "Applied personae.0001_initial" in out
    code, out, err = await personae(workdir, fake_ollama.url, "db", "migrate")
    assert "up to date" in out


async def test_doctor_reports_each_check_and_what_to_do(
    workdir: Path, fake_ollama: FakeOllama
) -> None:
    code, out, _ = await personae(workdir, fake_ollama.url, "doctor")
    assert code == 1  # migrations are pending on a new machine
    assert "run `personae db migrate`" in out
    await personae(workdir, fake_ollama.url, "db", "migrate")
    code, out, err = await personae(workdir, fake_ollama.url, "doctor")
    assert code == 0, out + err
    assert "llama3.2 is installed" in out
    fake_ollama.models.clear()
    code, out, _ = await personae(workdir, fake_ollama.url, "doctor")
    assert code == 1 and "ollama pull llama3.2" in out
    code, out, _ = await personae(workdir, "http://127.0.0.1:9", "doctor")
    assert code == 1 and "ollama serve" in out


async def test_plugins_lists_builtin_plugins_with_versions(
    workdir: Path, fake_ollama: FakeOllama
) -> None:
    code, out, err = await personae(workdir, fake_ollama.url, "plugins")
    assert code == 0, err
    for name in ("ollama_backend", "builtin_personas", "history", "profile"):
        assert name in out
    assert "0.1.0" in out
