"""The kit for plugin authors and the model commands for operators, used the way
they are meant to be: the example plugin pip-installed and found through its entry
point, the `personae` command run in a real process, every turn going over a
socket to the fake Ollama."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution, entry_points
from pathlib import Path
from typing import Any

import pytest

from personae import hookimpl
from personae.core.doctor import persona_inventory, run_checks
from personae.core.errors import PersonaeError
from personae.core.plugins import create_plugin_manager
from personae.core.runtime import Reply, Runtime
from personae.core.settings import Settings
from personae.core.types import Scope, Turn
from personae.testing import (
    FakeOllama,
    memory_items,
    plugin_state,
    run_command,
    run_turn,
    stored_messages,
    user_id,
)
from personae.testing.pytest_plugin import RuntimeFactory

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "personae-mood"
MOOD_HOOKS = (
    "export_user_data",
    "forget_user",
    "prompt_sections",
    "register_commands",
    "reply_complete",
)


# -- installing the example plugin ------------------------------------------------------


def _example_is_installed() -> bool:
    """Whether personae-mood is installed, editable, from this checkout."""
    try:
        found = distribution("personae-mood")
    except PackageNotFoundError:
        return False
    direct = json.loads(found.read_text("direct_url.json") or "{}")
    return bool(direct.get("dir_info", {}).get("editable")) and (
        direct.get("url") == EXAMPLE.as_uri()
    )


@pytest.fixture(scope="session")
def mood_installed() -> Iterator[Path]:
    """``pip install -e examples/personae-mood`` into this environment, once."""
    if not _example_is_installed():
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(EXAMPLE)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"pip could not install the example plugin:\n{done.stderr}")
        importlib.invalidate_caches()
    # The install's .pth file is only read when an interpreter starts; this process
    # started before it, so give it the same path (subprocesses get it themselves).
    source = str(EXAMPLE / "src")
    if source not in sys.path:
        sys.path.append(source)
    yield EXAMPLE


# -- running the personae command -------------------------------------------------------


async def personae(
    cwd: Path, fake: FakeOllama | str, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run ``python -m personae ARGS`` in ``cwd`` against the fake Ollama."""
    url = fake if isinstance(fake, str) else fake.url
    environment = {
        **os.environ,
        "PERSONAE_DATA_DIR": str(cwd / "data"),
        "PERSONAE_OLLAMA__HOST": url,
        "PERSONAE_OLLAMA__RETRIES": "0",
        "PERSONAE_OLLAMA__CONNECT_TIMEOUT": "1",
        "COLUMNS": "200",
        **(env or {}),
    }
    environment.pop("PERSONAE_CONFIG", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "personae",
        *args,
        cwd=cwd,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def run_python(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``python ARGS`` without blocking the event loop the fake Ollama runs on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 300)
    return process.returncode or 0, out.decode()


def write_card(folder: Path, persona_id: str, name: str, **personae_settings: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": name,
            "description": f"{{{{char}}}} is {name}.",
            "extensions": {"personae": {"id": persona_id, **personae_settings}},
        },
    }
    (folder / f"{persona_id}.json").write_text(json.dumps(card))


@pytest.fixture
def persona_folder(tmp_path: Path) -> Path:
    """Two personas that choose their own models, and options over the defaults."""
    folder = tmp_path / "personas"
    write_card(folder, "quick", "Quick", model="qwen2.5:0.5b", options={"temperature": 0.2})
    write_card(folder, "deep", "Deep", model="llama3.1:70b", options={"num_ctx": 32768})
    return folder


# -- the example plugin, installed -------------------------------------------------------


def test_the_installed_example_is_discovered_through_its_entry_point(
    mood_installed: Path, personae_settings: Settings
) -> None:
    (point,) = [ep for ep in entry_points(group="personae") if ep.name == "mood"]
    assert point.value == "personae_mood"
    info = {i.name: i for i in create_plugin_manager(personae_settings).plugins()}["mood"]
    assert (info.source, info.version, info.hooks) == ("entry point", "0.1.0", MOOD_HOOKS)


async def test_personae_plugins_lists_the_installed_example(
    mood_installed: Path, tmp_path: Path, personae_fake_ollama: FakeOllama
) -> None:
    code, out, err = await personae(tmp_path, personae_fake_ollama, "plugins")
    assert code == 0, err
    (row,) = [line for line in out.splitlines() if " mood " in line]
    assert "entry point" in row and "0.1.0" in row and ", ".join(MOOD_HOOKS) in row


async def test_the_example_takes_part_in_a_real_turn(
    mood_installed: Path, personae_runtime: Runtime, personae_fake_ollama: FakeOllama
) -> None:
    personae_fake_ollama.reply_with("Glad to help.")
    first = await run_turn(personae_runtime, "Thanks, that was wonderful!", persona="sage")
    assert "mood toward" not in first.system_prompt
    # reply_complete ran in the background and nudged the mood ...
    assert await plugin_state(personae_runtime, "mood", persona="sage") == {"level": 1}
    # ... and the next prompt that reaches Ollama carries the plugin's section.
    second = await run_turn(personae_runtime, "One more question.", persona="sage")
    assert "Sage's mood toward tester: warm." in second.system_prompt
    assert [m.content for m in await stored_messages(personae_runtime, persona="sage")] == [
        "Thanks, that was wonderful!",
        "Glad to help.",
        "One more question.",
        "Glad to help.",
    ]


async def test_disabled_plugins_turns_the_installed_example_off(
    mood_installed: Path, personae_runtime_factory: RuntimeFactory
) -> None:
    runtime = await personae_runtime_factory(disabled_plugins=["mood"])
    assert "mood" not in [info.name for info in runtime.plugins.plugins()]
    assert runtime.commands.get("mood") is None
    await run_turn(runtime, "Thanks, that was wonderful!", persona="sage")
    second = await run_turn(runtime, "Thanks again, lovely!", persona="sage")
    assert "mood toward" not in second.system_prompt
    assert await plugin_state(runtime, "mood", persona="sage") == {}


@pytest.mark.parametrize(("allowed", "loaded"), [("mood", True), ("someone-else", False)])
def test_the_personae_plugins_allowlist_decides_which_entry_points_load(
    mood_installed: Path,
    personae_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    allowed: str,
    loaded: bool,
) -> None:
    monkeypatch.setenv("PERSONAE_PLUGINS", allowed)
    names = [info.name for info in create_plugin_manager(personae_settings).plugins()]
    assert ("mood" in names) is loaded
    assert "history" in names  # the allowlist filters entry points, not built-in plugins


async def test_export_and_forget_commands_cover_the_example_plugin(
    mood_installed: Path, personae_runtime: Runtime
) -> None:
    await run_command(personae_runtime, "/mood fond", persona="sage")
    await run_command(personae_runtime, "/mood cold", persona="scav")
    export = await run_command(personae_runtime, "/export all", persona="sage")
    assert export.attachment is not None
    document = json.loads(export.attachment[1])
    moods = {row["persona_id"]: row["mood"] for row in document["plugins"]["mood"]}
    assert moods == {"sage": "fond", "scav": "cold"}

    forgotten = await run_command(personae_runtime, "/forget", persona="sage", confirm=True)
    assert forgotten.text.startswith("Forgotten: 1 records")
    assert await plugin_state(personae_runtime, "mood", persona="sage") == {}
    assert await plugin_state(personae_runtime, "mood", persona="scav") == {"level": -2}


async def test_a_plugin_failing_after_the_reply_is_named_and_the_others_still_run(
    mood_installed: Path,
    personae_runtime_factory: RuntimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Fragile:
        @hookimpl(tryfirst=True)
        def reply_complete(self, turn: Turn, reply: Reply) -> None:
            raise RuntimeError("kaboom")

    runtime = await personae_runtime_factory(plugins={"fragile": Fragile()})
    result = await run_turn(runtime, "You are lovely.", persona="sage")
    assert result.text == "You said: You are lovely."
    assert "plugin 'fragile' failed in hook reply_complete" in caplog.text
    assert await plugin_state(runtime, "mood", persona="sage") == {"level": 1}


async def test_a_plugin_failing_to_forget_makes_forgetting_visibly_incomplete(
    mood_installed: Path, personae_runtime_factory: RuntimeFactory
) -> None:
    class Stubborn:
        @hookimpl
        def forget_user(self, user_id: int) -> int:
            raise OSError("disk is read-only")

    runtime = await personae_runtime_factory(plugins={"stubborn": Stubborn()})
    await run_command(runtime, "/mood warm", persona="sage")
    with pytest.raises(PersonaeError, match=r"forget_user failed in plugin\(s\): stubborn"):
        await runtime.forget_user(await user_id(runtime))
    # every other plugin still forgot what it holds
    assert await plugin_state(runtime, "mood", persona="sage") == {}


async def test_the_example_plugins_own_tests_pass(mood_installed: Path) -> None:
    code, out = await run_python("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=EXAMPLE)
    assert code == 0, out
    assert " passed" in out and "failed" not in out


async def test_the_testing_helpers_read_one_scope_at_a_time(personae_runtime: Runtime) -> None:
    ann = await user_id(personae_runtime, "ann")
    await personae_runtime.memory.add(Scope("sage", ann), "Keeps bees")
    await run_turn(personae_runtime, "Hello.", persona="sage", user="ann", conversation="c1")
    remembered = await memory_items(personae_runtime, persona="sage", user="ann")
    assert "Keeps bees" in [item.text for item in remembered]
    assert await memory_items(personae_runtime, persona="scav", user="ann") == []
    assert await memory_items(personae_runtime, persona="sage", user="bob") == []
    assert (
        len(await stored_messages(personae_runtime, persona="sage", user=ann, conversation="c1"))
        == 2
    )
    assert await stored_messages(personae_runtime, persona="sage", user="ann") == []


# -- per-persona models ----------------------------------------------------------------


async def test_each_persona_asks_ollama_for_its_own_model_and_options(
    personae_runtime_factory: RuntimeFactory,
    personae_settings: Settings,
    personae_fake_ollama: FakeOllama,
    persona_folder: Path,
) -> None:
    personae_fake_ollama.models += ["qwen2.5:0.5b", "llama3.1:70b"]
    personae_settings.ollama.options = {"num_ctx": 8192, "temperature": 0.8}
    runtime = await personae_runtime_factory(entry_points=False, persona_dirs=[persona_folder])

    quick = await run_turn(runtime, "Quickly: hello.", persona="quick")
    deep = await run_turn(runtime, "Deeply: hello.", persona="deep")
    default = await run_turn(runtime, "Hello.", persona="sage")

    reply = {"num_predict": 512}  # the reply's reserve in the window, always sent
    assert (quick.model, quick.options) == (
        "qwen2.5:0.5b",
        {"num_ctx": 8192, "temperature": 0.2} | reply,
    )
    assert (deep.model, deep.options) == (
        "llama3.1:70b",
        {"num_ctx": 32768, "temperature": 0.8} | reply,
    )
    assert (default.model, default.options) == (
        "llama3.2",
        {"num_ctx": 8192, "temperature": 0.8} | reply,
    )
    assert "Quick" in quick.system_prompt and "Deep" in deep.system_prompt


async def test_personas_stored_in_the_database_count_once_it_is_migrated(
    personae_runtime_factory: RuntimeFactory, personae_settings: Settings
) -> None:
    before = await persona_inventory(personae_settings)
    assert "not migrated" in before.note
    assert {p.persona_id for p in before.personas} >= {"sage", "scav"}

    runtime = await personae_runtime_factory(entry_points=False)
    card = (await runtime.personas.get("sage")).with_settings(model="tiny:1b")
    await runtime.personas.save(card.model_copy(update={"id": "tiny-sage"}), owner_id=None)
    await runtime.stop()

    after = await persona_inventory(personae_settings)
    assert after.note == ""
    assert [p.persona_id for p in after.by_model()["tiny:1b"]] == ["tiny-sage"]


# -- personae models / doctor ------------------------------------------------------------


async def test_models_list_shows_each_model_with_the_personas_using_it(
    tmp_path: Path, personae_fake_ollama: FakeOllama, persona_folder: Path
) -> None:
    personae_fake_ollama.models.append("qwen2.5:0.5b")
    config = tmp_path / "personae.toml"
    config.write_text(f"persona_dirs = [{json.dumps(str(persona_folder))}]\n")
    code, out, err = await personae(
        tmp_path, personae_fake_ollama, "--config", str(config), "models", "list"
    )
    assert code == 0, err
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "(default)" in rows["llama3.2:latest"] and "sage" in rows["llama3.2:latest"]
    assert "quick" in rows["qwen2.5:0.5b"] and "GB" in rows["qwen2.5:0.5b"]
    assert "deep" in rows["llama3.1:70b"] and "not installed" in rows["llama3.1:70b"]
    assert "personae models pull llama3.1:70b" in out


async def test_models_pull_shows_ollamas_progress_and_installs_the_model(
    tmp_path: Path, personae_fake_ollama: FakeOllama
) -> None:
    code, out, err = await personae(tmp_path, personae_fake_ollama, "models", "pull", "phi3:mini")
    assert code == 0, err
    for status in ("pulling manifest", "verifying sha256 digest", "success", "Pulled phi3:mini"):
        assert status in out
    assert "4.0/4.0 MB" in out  # the layer's progress bar, complete
    assert personae_fake_ollama.has_model("phi3:mini")


async def test_models_pull_of_an_unknown_model_is_one_clear_error(
    tmp_path: Path, personae_fake_ollama: FakeOllama
) -> None:
    personae_fake_ollama.pullable = ["phi3:mini"]
    code, out, err = await personae(tmp_path, personae_fake_ollama, "models", "pull", "nosuch")
    assert code == 1
    assert "Error: Ollama could not pull 'nosuch'" in err and "ollama.com/library" in err
    assert "Traceback" not in out + err
    assert not personae_fake_ollama.has_model("nosuch")


async def test_doctor_names_the_personas_whose_model_is_missing(
    personae_settings: Settings, personae_fake_ollama: FakeOllama, persona_folder: Path
) -> None:
    personae_settings.persona_dirs = [persona_folder]
    personae_fake_ollama.models.append("qwen2.5:0.5b")
    checks = [c for c in await run_checks(personae_settings) if c.name == "persona models"]
    assert [(c.ok, c.detail) for c in checks] == [
        (False, f"deep uses llama3.1:70b, which is not installed on {personae_fake_ollama.url}")
    ]
    assert "personae models pull llama3.1:70b" in checks[0].fix

    personae_fake_ollama.models.append("llama3.1:70b")
    checks = [c for c in await run_checks(personae_settings) if c.name == "persona models"]
    assert [c.ok for c in checks] == [True]
    assert "2 persona(s) name their own model" in checks[0].detail


async def test_doctor_prints_the_missing_persona_model_and_the_fix(
    tmp_path: Path, personae_fake_ollama: FakeOllama, persona_folder: Path
) -> None:
    config = tmp_path / "personae.toml"
    config.write_text(f"persona_dirs = [{json.dumps(str(persona_folder))}]\n")
    code, out, _ = await personae(tmp_path, personae_fake_ollama, "-c", str(config), "doctor")
    assert code == 1
    assert "FAIL persona models: quick uses qwen2.5:0.5b, which is not installed" in out
    assert "-> run `personae models pull qwen2.5:0.5b`" in out


# -- personae plugin new ----------------------------------------------------------------


async def test_plugin_new_scaffolds_a_package_that_installs_and_passes_its_tests(
    tmp_path: Path, personae_fake_ollama: FakeOllama
) -> None:
    code, out, err = await personae(tmp_path, personae_fake_ollama, "plugin", "new", "greeter")
    assert code == 0, err
    package = tmp_path / "personae-greeter"
    assert sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()) == [
        "README.md",
        "pyproject.toml",
        "src/personae_greeter/__init__.py",
        "src/personae_greeter/py.typed",
        "tests/test_greeter.py",
    ]
    assert 'greeter = "personae_greeter"' in (package / "pyproject.toml").read_text()

    # Installed into a folder of its own (not this environment), then its tests run
    # with that folder on the path: the entry point is found there.
    site = tmp_path / "site"
    code, out = await run_python(
        "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(package), cwd=tmp_path
    )
    assert code == 0, out
    code, out = await run_python(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package, env={"PYTHONPATH": str(site)}
    )
    assert code == 0, out
    assert "4 passed" in out

    code, _, err = await personae(tmp_path, personae_fake_ollama, "plugin", "new", "greeter")
    assert code == 1 and "already exists" in err
