"""Importing cards and lorebooks on the command line: nothing is overwritten
silently, pictures become avatars, lorebooks attach and export."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from personae.core.cards import load_card, parse_card_json, write_png_card
from personae.testing.fake_ollama import FakeOllama
from tests.card_fixtures import chinese_card, v2_card, world_info_file
from tests.conftest import reply_prompts
from tests.test_cli import personae


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def write(workdir: Path, name: str, document: dict[str, object]) -> str:
    (workdir / name).write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return name


async def test_importing_the_same_card_twice_makes_a_second_persona(
    workdir: Path, fake_ollama: FakeOllama
) -> None:
    name = write(workdir, "mara.json", v2_card())
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "import", name)
    assert code == 0 and "captain-mara-voss" in out, err
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "import", name)
    assert code == 0, err
    assert "captain-mara-voss-2" in out and "already taken" in out
    code, out, _ = await personae(workdir, fake_ollama.url, "personas", "list")
    assert "captain-mara-voss-2" in out and "captain-mara-voss " in out


async def test_replace_overwrites_the_stored_persona(
    workdir: Path, fake_ollama: FakeOllama
) -> None:
    card = v2_card()
    await personae(workdir, fake_ollama.url, "personas", "import", write(workdir, "a.json", card))
    card["data"]["description"] = "A new description."
    code, out, err = await personae(
        workdir, fake_ollama.url, "personas", "import", write(workdir, "b.json", card), "--replace"
    )
    assert code == 0 and "replaced the stored persona" in out, err
    code, out, _ = await personae(workdir, fake_ollama.url, "personas", "show", "captain-mara-voss")
    assert "A new description." in out


async def test_a_card_named_like_a_built_in_does_not_hide_it(
    workdir: Path, fake_ollama: FakeOllama
) -> None:
    sage = write(workdir, "sage.json", {"name": "Sage", "description": "an impostor"})
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "import", sage)
    assert code == 0 and "sage-2" in out, err
    code, out, _ = await personae(workdir, fake_ollama.url, "personas", "show", "sage")
    assert "an impostor" not in out
    code, out, err = await personae(
        workdir, fake_ollama.url, "personas", "import", sage, "--replace"
    )
    assert code == 0 and "overrides the built-in persona 'sage'" in out, err
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "delete", "sage")
    assert code == 0 and "The built-in sage" in out and "is back" in out, err
    code, out, _ = await personae(workdir, fake_ollama.url, "personas", "show", "sage")
    assert "an impostor" not in out


async def test_deleting_a_built_in_persona_is_refused_clearly(
    workdir: Path, fake_ollama: FakeOllama
) -> None:
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "delete", "scav")
    assert code == 1 and "is built in" in err and "Traceback" not in err


async def test_a_png_card_keeps_its_picture_as_the_avatar(
    workdir: Path, fake_ollama: FakeOllama
) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(picture, format="PNG")
    png = write_png_card(parse_card_json(v2_card()), picture.getvalue())
    (workdir / "mara.png").write_bytes(png)
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "import", "mara.png")
    assert code == 0, err
    avatars = list((workdir / "data" / "avatars").glob("*.png"))
    assert len(avatars) == 1
    code, _, err = await personae(
        workdir, fake_ollama.url, "personas", "export", "captain-mara-voss", "out.png"
    )
    assert code == 0, err
    with Image.open(workdir / "out.png") as exported:
        assert exported.size == (16, 16)
        assert exported.convert("RGB").getpixel((3, 3)) == (10, 200, 30)
    assert load_card(workdir / "out.png").settings.avatar is None  # no server file name


async def test_a_chinese_card_gets_a_readable_id(workdir: Path, fake_ollama: FakeOllama) -> None:
    name = write(workdir, "xh.json", chinese_card())
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "import", name)
    assert code == 0 and "xiaohong" in out, err


async def test_a_world_info_file_attaches_as_a_lorebook_and_exports_back(
    workdir: Path, fake_ollama: FakeOllama
) -> None:
    name = write(workdir, "eldoria.json", world_info_file())
    code, out, err = await personae(workdir, fake_ollama.url, "personas", "import", name)
    assert code == 1 and "lorebook attach" in err
    code, out, err = await personae(
        workdir, fake_ollama.url, "personas", "lorebook", "attach", "sage", name
    )
    assert code == 0 and "4 entries" in out, err
    code, out, err = await personae(
        workdir, fake_ollama.url, "personas", "lorebook", "export", "sage", "back.json"
    )
    assert code == 0, err
    back = json.loads((workdir / "back.json").read_text())
    original = world_info_file()["entries"]
    assert {uid: e["content"] for uid, e in back["entries"].items()} == {
        uid: e["content"] for uid, e in original.items()
    }
    fake_ollama.reply_with("Aye.")
    code, out, err = await personae(
        workdir, fake_ollama.url, "chat", "-p", "sage", stdin="tell me of Eldoria\n"
    )
    assert code == 0, err

    prompt = json.dumps(reply_prompts(fake_ollama)[-1].json["messages"])
    assert "river kingdom" in prompt and "quiet and costly" in prompt
    code, out, err = await personae(
        workdir, fake_ollama.url, "personas", "lorebook", "detach", "sage"
    )
    assert code == 0, err
