"""Cards leaving personae for other tools, and arriving from them: the V1 mirror
fields, ``.charx`` archives, lorebook files offered as cards, readable ids."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from personae.core import card_png
from personae.core.cards import (
    dump_card_json,
    load_card,
    load_card_and_picture,
    parse_card_json,
    save_card,
    write_png_card,
)
from personae.core.charx import ICON_PATH, read_charx, write_charx
from personae.core.errors import CardError
from tests.card_fixtures import chinese_card, v2_card, v3_card, world_info_file


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_json_export_writes_the_v1_mirror_fields_sillytavern_writes() -> None:
    card = parse_card_json(v2_card())
    document = json.loads(dump_card_json(card))
    for key in ("name", "description", "personality", "scenario", "first_mes", "mes_example"):
        assert document[key] == document["data"][key] == v2_card()["data"][key], key
    assert document["creatorcomment"] == "Works best with a 2-message scan depth."
    assert document["tags"] == ["sci-fi", "captain"]
    assert document["talkativeness"] == "0.5"
    assert document["spec"] == "chara_card_v2"


def test_png_export_carries_the_mirror_fields_in_both_chunks() -> None:
    png = write_png_card(parse_card_json(v3_card()))
    chunks = card_png.read_text_chunks(png, ("chara", "ccv3"))
    for key in ("chara", "ccv3"):
        document = json.loads(base64.b64decode(chunks[key]))
        assert document["name"] == "Captain Mara Voss"
        assert document["first_mes"].startswith("*{{char}} looks up")
    assert json.loads(base64.b64decode(chunks["ccv3"]))["spec"] == "chara_card_v3"


def test_a_charx_archive_imports_with_its_icon(tmp_path: Path) -> None:
    archive = io.BytesIO()
    icon = picture()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("card.json", json.dumps(v3_card()))
        zipped.writestr("assets/icon/images/main.png", icon)
    path = tmp_path / "mara.charx"
    path.write_bytes(archive.getvalue())
    card, image = load_card_and_picture(path)
    assert card.name == "Captain Mara Voss" and card.spec == "chara_card_v3"
    assert card.character_book is not None and len(card.character_book["entries"]) == 14
    assert image == icon


def test_charx_export_round_trips_card_and_icon(tmp_path: Path) -> None:
    card = parse_card_json(v3_card())
    icon = picture()
    path = tmp_path / "out.charx"
    save_card(card, path, image=icon)
    with zipfile.ZipFile(path) as zipped:
        assert set(zipped.namelist()) == {"card.json", ICON_PATH}
        document = json.loads(zipped.read("card.json"))
    assert document["name"] == "Captain Mara Voss"  # the mirror, in card.json too
    assets = document["data"]["assets"]
    assert assets == [
        {"type": "icon", "uri": f"embeded://{ICON_PATH}", "name": "main", "ext": "png"}
    ]  # the background pointed at a file the export cannot include
    again, image = read_charx(path.read_bytes())
    assert image == icon
    assert again.character_book == card.character_book
    assert again.alternate_greetings == card.alternate_greetings


def test_charx_export_without_a_picture_names_the_default_icon() -> None:
    data = write_charx(parse_card_json(v2_card()))
    with zipfile.ZipFile(io.BytesIO(data)) as zipped:
        document = json.loads(zipped.read("card.json"))
    assert document["spec"] == "chara_card_v3"
    assert document["data"]["assets"][0]["uri"] == "ccdefault:"


def test_a_zip_without_card_json_is_refused_clearly(tmp_path: Path) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("readme.txt", "hi")
    path = tmp_path / "x.charx"
    path.write_bytes(archive.getvalue())
    with pytest.raises(CardError, match="no card.json"):
        load_card(path)


def test_a_png_import_keeps_the_picture(tmp_path: Path) -> None:
    path = tmp_path / "mara.png"
    path.write_bytes(write_png_card(parse_card_json(v2_card()), picture()))
    card, image = load_card_and_picture(path)
    assert image == path.read_bytes() and card.name == "Captain Mara Voss"


def test_a_world_info_file_offered_as_a_card_says_it_is_a_lorebook() -> None:
    with pytest.raises(CardError, match="lorebook .*lorebook attach"):
        parse_card_json(json.dumps(world_info_file()))


def test_a_chinese_card_gets_a_readable_id() -> None:
    assert parse_card_json(chinese_card()).id == "xiaohong"


def test_group_only_greetings_survive_a_v2_round_trip() -> None:
    card = parse_card_json(json.loads(dump_card_json(parse_card_json(v2_card()))))
    assert card.group_only_greetings == ["*{{char}} nods to the crew.*"]
