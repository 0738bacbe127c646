"""Character cards: V1/V2/V3 import, JSON and PNG round trips, robustness, macros,
example dialogue and the built-in personas."""

from __future__ import annotations

import base64
import copy
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from pydantic import ValidationError

from personae.core.cards import (
    MAX_CARD_BYTES,
    PersonaCard,
    PersonaSettings,
    card_to_dict,
    dump_card_json,
    load_card,
    parse_card_json,
    parse_example_messages,
    read_png_card,
    render_macros,
    save_card,
    write_png_card,
)
from personae.core.errors import CardError
from personae.personas import DEFAULT_PERSONA_ID, builtin_cards

# --- realistic cards -------------------------------------------------------------------

CHARACTER_BOOK: dict[str, Any] = {
    "name": "Lighthouse lore",
    "description": "",
    "scan_depth": 4,
    "token_budget": 512,
    "recursive_scanning": False,
    "extensions": {},
    "entries": [
        {
            "keys": ["lamp", "light"],
            "content": "The lamp has not gone out in ninety years.",
            "extensions": {"position": 0, "exclude_recursion": False, "probability": 100},
            "enabled": True,
            "insertion_order": 100,
            "case_sensitive": False,
            "name": "The lamp",
            "priority": 10,
            "id": 0,
            "comment": "",
            "selective": False,
            "secondary_keys": [],
            "constant": False,
            "position": "before_char",
        },
        {
            "keys": ["Marrow"],
            "content": "Marrow is the village across the bay.",
            "extensions": {},
            "enabled": True,
            "insertion_order": 90,
            "use_regex": False,
            "id": 1,
        },
    ],
}

UNKNOWN_EXTENSIONS: dict[str, Any] = {
    "talkativeness": "0.5",
    "fav": False,
    "world": "Lighthouse lore",
    "depth_prompt": {"prompt": "{{char}} smells of salt.", "depth": 4, "role": "system"},
    "chub": {
        "id": 123456,
        "full_path": "someone/old-keeper-abc123",
        "extensions": [],
        "expressions": None,
        "alt_expressions": {},
        "related_lorebooks": [],
    },
}


def v2_document() -> dict[str, Any]:
    """Shaped like a SillyTavern export: V1 mirror fields at the top, V2 in data."""
    data = {
        "name": "Old Keeper",
        "description": "{{char}} keeps the lighthouse at the end of the world.",
        "personality": "gruff, kind underneath, superstitious",
        "scenario": "A storm has driven {{user}} to the lighthouse door.",
        "first_mes": "*The door creaks.* Well, don't stand in the rain, {{user}}.",
        "mes_example": "<START>\n{{user}}: Hello?\n{{char}}: Shut the door, lad.",
        "creator_notes": "Best with a slow model.",
        "system_prompt": "",
        "post_history_instructions": "Stay gruff.",
        "tags": ["fantasy", "sea"],
        "creator": "someone",
        "character_version": "1.2",
        "alternate_greetings": ["*He squints at you.* Another one washed up."],
        "extensions": copy.deepcopy(UNKNOWN_EXTENSIONS),
        "group_only_greetings": [],
        "character_book": copy.deepcopy(CHARACTER_BOOK),
    }
    top = {key: data[key] for key in ("name", "description", "personality", "scenario")}
    return {
        **top,
        "first_mes": data["first_mes"],
        "mes_example": data["mes_example"],
        "avatar": "none",
        "talkativeness": "0.5",
        "fav": False,
        "create_date": "2024-5-1 @12h 00m 00s 000ms",
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": data,
    }


def v3_document() -> dict[str, Any]:
    data = copy.deepcopy(v2_document()["data"])
    data.update(
        {
            "name": "Ghost of the Keeper",
            "nickname": "Keeper",
            "group_only_greetings": ["*A cold draught moves through the room.*"],
            "creator_notes_multilingual": {"en": "Best with a slow model.", "de": "Langsam."},
            "source": ["https://example.invalid/keeper"],
            "creation_date": 1714560000,
            "modification_date": 1717238400,
            "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
        }
    )
    data["extensions"]["risuai"] = {"utilityBot": False, "sourceUrl": None}
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": data}


def b64_json(document: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(document).encode("utf-8")).decode("ascii")


def picture(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    """A real image with varied pixels (a gradient), so compression is non-trivial."""
    image = Image.new("RGB", size)
    image.putdata(
        [(x * 4 % 256, y * 5 % 256, (x * y) % 256) for y in range(size[1]) for x in range(size[0])]
    )
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def sillytavern_png(text_chunks: dict[str, str], image: bytes | None = None) -> bytes:
    """Insert tEXt chunks just before IEND (after the image data), as SillyTavern does."""
    data = image or picture()
    iend = data.rindex(b"IEND") - 4
    extra = b"".join(
        chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1"))
        for k, v in text_chunks.items()
    )
    return data[:iend] + extra + data[iend:]


def pillow_png(info: PngInfo, image: bytes | None = None) -> bytes:
    """Text chunks written by Pillow (before the image data)."""
    with Image.open(io.BytesIO(image or picture())) as source:
        out = io.BytesIO()
        source.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def pixels(data: bytes) -> tuple[tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size, image.convert("RGB").tobytes()


def png_text(data: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.text)  # type: ignore[attr-defined]


def without_own(extensions: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in extensions.items() if key != "personae"}


# --- JSON round trips ------------------------------------------------------------------


def test_v2_json_round_trip_keeps_fields_book_and_unknown_extensions(tmp_path: Path) -> None:
    path = tmp_path / "keeper.json"
    path.write_text(json.dumps(v2_document()), encoding="utf-8")

    card = load_card(path)
    exported = card_to_dict(card)

    original = v2_document()["data"]
    assert exported["spec"] == "chara_card_v2" and exported["spec_version"] == "2.0"
    assert card.id == "old-keeper"
    assert without_own(exported["data"]["extensions"]) == UNKNOWN_EXTENSIONS
    assert exported["data"]["extensions"]["personae"] == {"id": "old-keeper"}
    assert exported["data"]["character_book"] == CHARACTER_BOOK
    for key, value in original.items():
        if key not in ("extensions", "group_only_greetings"):
            assert exported["data"][key] == value, key

    again = tmp_path / "again.json"
    save_card(card, again)
    assert load_card(again) == parse_card_json(exported)
    assert without_own(load_card(again).extensions) == UNKNOWN_EXTENSIONS


def test_v3_json_round_trip_keeps_v3_only_fields(tmp_path: Path) -> None:
    path = tmp_path / "ghost.json"
    path.write_bytes(json.dumps(v3_document(), ensure_ascii=False).encode("utf-8"))

    card = load_card(path)
    exported = card_to_dict(card)

    assert card.spec == "chara_card_v3"
    assert card.nickname == "Keeper"
    assert card.group_only_greetings == ["*A cold draught moves through the room.*"]
    expected = v3_document()["data"]
    expected["extensions"]["personae"] = {"id": "ghost-of-the-keeper"}
    assert exported == {"spec": "chara_card_v3", "spec_version": "3.0", "data": expected}


def test_v3_card_exported_as_v2_drops_only_v3_only_fields() -> None:
    card = parse_card_json(v3_document())
    v2 = card_to_dict(card, "chara_card_v2")
    assert v2["spec"] == "chara_card_v2" and v2["spec_version"] == "2.0"
    for key in ("assets", "source", "creation_date", "nickname", "creator_notes_multilingual"):
        assert key not in v2["data"]
    assert without_own(v2["data"]["extensions"]) == v3_document()["data"]["extensions"]


def test_unknown_data_fields_round_trip() -> None:
    document = v2_document()
    document["data"]["x_custom_tool"] = {"keep": [1, 2, 3]}
    exported = card_to_dict(parse_card_json(document))
    assert exported["data"]["x_custom_tool"] == {"keep": [1, 2, 3]}


def test_exported_json_is_utf8_and_reparses_to_the_same_card() -> None:
    card = PersonaCard(name="Zoë", first_mes="Привет, {{user}} ✨")
    data = dump_card_json(card)
    assert "Привет".encode() in data
    assert parse_card_json(data) == parse_card_json(card_to_dict(card))


def test_v1_flat_card_imports_as_v2() -> None:
    card = parse_card_json(
        json.dumps(
            {
                "name": "Ada",
                "description": "A mathematician.",
                "personality": "precise",
                "scenario": "A salon in London.",
                "first_mes": "Good evening.",
                "mes_example": "{{user}}: Hi\n{{char}}: Hello.",
                "avatar": "none",
                "chat": "Ada - 2024",
            }
        )
    )
    assert card.spec == "chara_card_v2"
    assert (card.id, card.name, card.first_mes, card.scenario) == (
        "ada",
        "Ada",
        "Good evening.",
        "A salon in London.",
    )
    assert card.extra_fields == {}
    assert card_to_dict(card)["data"]["extensions"] == {"personae": {"id": "ada"}}


def test_legacy_pygmalion_field_names_import() -> None:
    card = parse_card_json(
        {
            "char_name": "Bo",
            "char_persona": "A dog.",
            "char_greeting": "Woof.",
            "world_scenario": "A park.",
        }
    )
    assert (card.name, card.description, card.first_mes, card.scenario) == (
        "Bo",
        "A dog.",
        "Woof.",
        "A park.",
    )


def test_lenient_about_nulls_numbers_and_comma_separated_tags() -> None:
    document = v2_document()
    document["data"].update(
        {"character_version": 2, "character_book": None, "creator_notes": None, "tags": "a, b"}
    )
    card = parse_card_json(document)
    assert card.character_version == "2"
    assert card.character_book is None and "character_book" not in card_to_dict(card)["data"]
    assert card.creator_notes == ""
    assert card.tags == ["a", "b"]


# --- ids -------------------------------------------------------------------------------


def test_id_is_derived_from_the_name() -> None:
    assert PersonaCard(name="Dagoth Ur").id == "dagoth-ur"
    assert PersonaCard(name="  Señor   Ñandú!! ").id == "senor-nandu"
    assert PersonaCard(name="x" * 100).id == "x" * 64
    assert PersonaCard(name="Мария").id == "mariya"


def test_chinese_names_get_readable_transliterated_ids() -> None:
    assert PersonaCard(name="小红").id == "xiaohong"
    assert PersonaCard(name="東方 Project").id == "dongfang-project"


def test_invalid_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="persona id"):
        PersonaCard(name="A", id="Not A Slug")
    with pytest.raises(ValueError):
        PersonaCard(name="A", id="x" * 65)


def test_id_survives_json_and_png_round_trips(tmp_path: Path) -> None:
    card = PersonaCard(id="my-keeper_2", name="Old Keeper")
    save_card(card, tmp_path / "k.json")
    save_card(card, tmp_path / "k.png")
    assert load_card(tmp_path / "k.json").id == "my-keeper_2"
    assert load_card(tmp_path / "k.png").id == "my-keeper_2"


def test_sloppy_id_in_extensions_is_slugified() -> None:
    document = v2_document()
    document["data"]["extensions"]["personae"] = {"id": "Old Keeper Two"}
    assert parse_card_json(document).id == "old-keeper-two"


# --- settings --------------------------------------------------------------------------


def test_settings_default_when_card_has_none() -> None:
    settings_ = parse_card_json(v2_document()).settings
    assert settings_ == PersonaSettings()
    assert settings_.curiosity == "low" and settings_.sharing_group is None


def test_with_settings_writes_only_personae_keys() -> None:
    document = v2_document()
    document["data"]["extensions"]["personae"] = {"id": "keeper", "future_key": {"a": 1}}
    card = parse_card_json(document)
    assert card.settings.curiosity == "low"  # read (and kept) before the copy is made

    changed = card.with_settings(curiosity="high", sharing_group="coast", model="llama3.2")

    assert changed.settings.curiosity == "high"
    assert changed.settings.sharing_group == "coast"
    assert changed.settings.model == "llama3.2"
    assert changed.extensions["personae"] == {
        "id": "keeper",
        "future_key": {"a": 1},
        "curiosity": "high",
        "sharing_group": "coast",
        "model": "llama3.2",
    }
    assert without_own(changed.extensions) == UNKNOWN_EXTENSIONS
    assert card.settings.curiosity == "low"  # the original is untouched
    reloaded = parse_card_json(dump_card_json(changed))
    assert reloaded.settings == changed.settings
    assert reloaded.settings.model_extra == {"future_key": {"a": 1}}


def test_settings_are_read_once_per_card_and_cannot_be_changed_in_place() -> None:
    card = PersonaCard(name="A", extensions={"personae": {"curiosity": "high"}})
    assert card.settings is card.settings
    with pytest.raises(ValidationError):
        card.settings.curiosity = "off"  # type: ignore[misc]
    assert card.settings.curiosity == "high"


def test_with_settings_validates_values() -> None:
    card = PersonaCard(name="A")
    with pytest.raises(ValueError):
        card.with_settings(curiosity="extreme")
    with pytest.raises(ValueError):
        card.with_settings(id="b")


def test_invalid_personae_settings_in_a_card_are_a_card_error() -> None:
    document = v2_document()
    document["data"]["extensions"]["personae"] = {"curiosity": "extreme"}
    with pytest.raises(CardError, match="curiosity"):
        parse_card_json(document)


# --- PNG -------------------------------------------------------------------------------


def test_sillytavern_style_png_loads_and_round_trips_with_its_picture(tmp_path: Path) -> None:
    image = picture()
    path = tmp_path / "keeper.png"
    path.write_bytes(sillytavern_png({"chara": b64_json(v2_document())}, image))

    card = load_card(path)
    assert card.name == "Old Keeper"
    assert without_own(card.extensions) == UNKNOWN_EXTENSIONS
    assert card.character_book == CHARACTER_BOOK

    out = tmp_path / "out.png"
    save_card(card.with_settings(curiosity="medium"), out, image=path.read_bytes())
    reloaded = load_card(out)
    assert without_own(reloaded.extensions) == UNKNOWN_EXTENSIONS
    assert reloaded.character_book == CHARACTER_BOOK
    assert reloaded.settings.curiosity == "medium"
    assert pixels(out.read_bytes()) == pixels(image)


def test_v3_png_round_trip_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "ghost.png"
    path.write_bytes(sillytavern_png({"ccv3": b64_json(v3_document())}))
    card = load_card(path)
    save_card(card, tmp_path / "out.png")
    reloaded = load_card(tmp_path / "out.png")
    assert card_to_dict(reloaded) == card_to_dict(card)
    assert card_to_dict(reloaded)["data"]["assets"] == v3_document()["data"]["assets"]


def test_written_png_carries_both_v2_and_v3_chunks() -> None:
    card = parse_card_json(v3_document())
    text = png_text(write_png_card(card, picture("JPEG")))
    chara = json.loads(base64.b64decode(text["chara"]))
    ccv3 = json.loads(base64.b64decode(text["ccv3"]))
    assert chara["spec"] == "chara_card_v2" and ccv3["spec"] == "chara_card_v3"
    assert chara["data"]["name"] == ccv3["data"]["name"] == "Ghost of the Keeper"
    assert without_own(chara["data"]["extensions"]) == v3_document()["data"]["extensions"]
    assert "assets" in ccv3["data"] and "assets" not in chara["data"]


def test_writing_over_a_card_png_replaces_its_old_chunks() -> None:
    old = sillytavern_png({"chara": b64_json(v2_document()), "ccv3": b64_json(v3_document())})
    new = write_png_card(PersonaCard(name="Newcomer"), old)
    assert read_png_card(new).name == "Newcomer"
    assert new.count(b"tEXtchara") == 1 and new.count(b"tEXtccv3") == 1


def test_ccv3_chunk_is_preferred_over_chara() -> None:
    v2 = v2_document()
    v3 = v3_document()
    both_orders = [
        sillytavern_png({"chara": b64_json(v2), "ccv3": b64_json(v3)}),
        sillytavern_png({"ccv3": b64_json(v3), "chara": b64_json(v2)}),
    ]
    for data in both_orders:
        card = read_png_card(data)
        assert card.name == "Ghost of the Keeper" and card.spec == "chara_card_v3"


def test_corrupt_ccv3_falls_back_to_chara() -> None:
    data = sillytavern_png({"ccv3": "!!not base64!!", "chara": b64_json(v2_document())})
    assert read_png_card(data).name == "Old Keeper"


def test_generated_avatar_when_no_image_given() -> None:
    data = write_png_card(PersonaCard(name="Pip"))
    size, _ = pixels(data)
    assert size == (256, 256)
    assert read_png_card(data).name == "Pip"


@pytest.mark.parametrize("how", ["itxt", "itxt-compressed", "ztxt", "before-image-data"])
def test_card_is_read_from_any_text_chunk_type(how: str) -> None:
    info = PngInfo()
    value = b64_json(v2_document())
    if how.startswith("itxt"):
        info.add_itxt("chara", value, zip=how == "itxt-compressed")
    else:
        info.add_text("chara", value, zip=how == "ztxt")
    assert read_png_card(pillow_png(info)).name == "Old Keeper"


def test_png_without_a_card_chunk_is_a_card_error(tmp_path: Path) -> None:
    info = PngInfo()
    info.add_text("Software", "GIMP")
    path = tmp_path / "photo.png"
    path.write_bytes(pillow_png(info))
    with pytest.raises(CardError, match="no character card data"):
        load_card(path)


@pytest.mark.parametrize(
    "value",
    ["!!!! not base64 !!!!", "QUJD", base64.b64encode(b"\xff\xfe garbage").decode(), "W1td"],
    ids=["not-base64", "not-json", "not-utf8", "json-array"],
)
def test_corrupt_card_chunk_is_a_card_error(value: str) -> None:
    with pytest.raises(CardError, match="corrupt"):
        read_png_card(sillytavern_png({"chara": value}))


def test_truncated_png_is_a_card_error(tmp_path: Path) -> None:
    data = sillytavern_png({"chara": b64_json(v2_document())}, picture(size=(300, 300)))
    path = tmp_path / "cut.png"
    for cut in (len(data) // 2, 20, 9):
        path.write_bytes(data[:cut])
        with pytest.raises(CardError):
            load_card(path)


def test_truncated_png_whose_card_comes_first_still_loads() -> None:
    data = write_png_card(PersonaCard(name="Early Bird"), picture(size=(300, 300)))
    assert read_png_card(data[: len(data) - 200]).name == "Early Bird"


def test_files_are_sniffed_by_content_not_name(tmp_path: Path) -> None:
    json_named_png = tmp_path / "card.png"
    json_named_png.write_text(json.dumps(v2_document()), encoding="utf-8")
    png_named_json = tmp_path / "card.json"
    png_named_json.write_bytes(write_png_card(PersonaCard(name="Pip")))
    no_suffix = tmp_path / "card"
    no_suffix.write_bytes(b"\xef\xbb\xbf" + json.dumps(v3_document()).encode())

    assert load_card(json_named_png).name == "Old Keeper"
    assert load_card(png_named_json).name == "Pip"
    assert load_card(no_suffix).name == "Ghost of the Keeper"


def test_jpeg_is_not_a_card(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(picture("JPEG"))
    with pytest.raises(CardError, match="neither a PNG image, a .charx archive nor a JSON file"):
        load_card(path)


# --- invalid input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        (b'{"name": "A",', "not valid JSON"),
        (b'{"name": NaN}', "not valid JSON"),
        (b'["a", "b"]', "not an object"),
        (b"null", "not an object"),
        (b'{"description": "nameless"}', "no name"),
        (b'{"spec": "chara_card_v2", "data": {"name": "  "}}', "no name"),
        (b'{"spec": "chara_card_v2", "spec_version": "2.0"}', "no 'data' object"),
        (b'{"spec": "chara_card_v9", "data": {"name": "A"}}', "Unsupported card spec"),
        (b'{"spec": "chara_card_v2", "data": {"name": "A", "tags": [1]}}', "list of texts"),
        (b'{"spec": "chara_card_v2", "data": {"name": {"x": 1}}}', "must be text"),
        (b'{"spec": "chara_card_v2", "data": {"name": "A", "extensions": []}}', "object"),
        (b"[" * 100_000 + b"]" * 100_000, "not"),
    ],
    ids=[
        "utf16",
        "truncated-json",
        "nan",
        "array",
        "null",
        "missing-name",
        "blank-name",
        "no-data",
        "unknown-spec",
        "bad-tags",
        "bad-name-type",
        "bad-extensions",
        "deep-nesting",
    ],
)
def test_invalid_json_cards_give_a_clear_card_error(data: bytes, message: str) -> None:
    with pytest.raises(CardError, match=message):
        parse_card_json(data)


def test_oversized_inputs_are_rejected(tmp_path: Path) -> None:
    big = b" " * (MAX_CARD_BYTES + 1)
    with pytest.raises(CardError, match="20 MB"):
        parse_card_json(big)
    with pytest.raises(CardError, match="20 MB"):
        read_png_card(b"\x89PNG\r\n\x1a\n" + big)
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_CARD_BYTES + 1)
    with pytest.raises(CardError, match="20 MB"):
        load_card(path)


def test_missing_file_directory_and_empty_file_are_card_errors(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="no card file"):
        load_card(tmp_path / "nope.png")
    with pytest.raises(CardError, match="directory"):
        load_card(tmp_path)
    (tmp_path / "empty.json").write_bytes(b"")
    with pytest.raises(CardError, match="empty"):
        load_card(tmp_path / "empty.json")


def test_save_card_rejects_unknown_suffix_and_unwritable_values(tmp_path: Path) -> None:
    with pytest.raises(CardError, match=r"\.json, \.png or \.charx"):
        save_card(PersonaCard(name="A"), tmp_path / "a.txt")
    card = PersonaCard(name="A", extensions={"bad": {1, 2}})
    with pytest.raises(CardError, match="cannot be written as JSON"):
        dump_card_json(card)


def test_saving_a_png_over_an_existing_card_keeps_its_picture(tmp_path: Path) -> None:
    path = tmp_path / "keeper.png"
    image = picture(size=(80, 60))
    path.write_bytes(sillytavern_png({"chara": b64_json(v2_document())}, image))
    save_card(load_card(path).with_settings(curiosity="off"), path)
    assert load_card(path).settings.curiosity == "off"
    assert pixels(path.read_bytes()) == pixels(image)
    assert not list(tmp_path.glob(".*.tmp"))


def test_unreadable_avatar_image_is_a_card_error() -> None:
    with pytest.raises(CardError, match="avatar image"):
        write_png_card(PersonaCard(name="A"), b"definitely not an image")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise_anything_but_card_error(data: bytes) -> None:
    for reader in (parse_card_json, read_png_card):
        try:
            reader(data)
        except CardError:
            pass


_VALID_PNG = sillytavern_png({"chara": b64_json(v2_document())})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(8, len(_VALID_PNG) - 1), st.integers(0, 255), st.integers(0, len(_VALID_PNG)))
def test_damaged_pngs_never_raise_anything_but_card_error(where: int, byte: int, cut: int) -> None:
    damaged = bytearray(_VALID_PNG[:cut] if cut > 8 else _VALID_PNG)
    if where < len(damaged):
        damaged[where] = byte
    try:
        read_png_card(bytes(damaged))
    except CardError:
        pass


# --- macros and example dialogue -------------------------------------------------------


def test_render_macros_replaces_char_and_user_in_all_forms() -> None:
    text = "{{char}} greets {{user}}. {{CHAR}}/{{ User }}/<BOT>/<user>/<Bot>"
    assert render_macros(text, char="Pip", user="Ann") == "Pip greets Ann. Pip/Ann/Pip/Ann/Pip"


def test_render_macros_does_not_expand_replaced_text() -> None:
    assert render_macros("hi {{user}}", char="X", user="{{char}}") == "hi {{char}}"
    assert render_macros(r"{{user}}", char="X", user=r"a\1b") == r"a\1b"


def test_parse_example_messages_splits_blocks_and_multiline_turns() -> None:
    mes_example = (
        "Stray notes before any speaker are ignored.\n"
        "<START>\n"
        "{{user}}: Hello, {{char}}.\n"
        "{{char}}: Hello, {{user}}!\n"
        "I have two lines.\n"
        "\n"
        "<start>\n"
        "<USER>: Legacy form.\n"
        "<BOT>:Reply without a space.\n"
        "<START>\n"
        "Ann: Literal user name.\n"
        "Pip: Literal char name, with a colon: here.\n"
        "{{char}}:\n"
        "<START>\n"
    )
    assert parse_example_messages(mes_example, char="Pip", user="Ann") == [
        ("user", "Hello, Pip."),
        ("assistant", "Hello, Ann!\nI have two lines."),
        ("user", "Legacy form."),
        ("assistant", "Reply without a space."),
        ("user", "Literal user name."),
        ("assistant", "Literal char name, with a colon: here."),
    ]


def test_parse_example_messages_handles_empty_and_crlf() -> None:
    assert parse_example_messages("", char="A", user="B") == []
    assert parse_example_messages("{{user}}: hi\r\n{{char}}: yo\r\n", char="A", user="B") == [
        ("user", "hi"),
        ("assistant", "yo"),
    ]


# --- built-in personas -----------------------------------------------------------------


def test_builtin_personas_load_with_unique_ids_and_distinct_greetings() -> None:
    cards = builtin_cards()
    ids = [card.id for card in cards]
    assert len(cards) >= 4
    assert len(set(ids)) == len(ids)
    assert {"sage", "dagoth-ur", "scav", "pip"} <= set(ids)
    assert ids[0] == DEFAULT_PERSONA_ID
    assert len({card.first_mes for card in cards}) == len(cards)
    assert next(card for card in cards if card.id == "pip").settings.curiosity == "high"


@pytest.mark.parametrize("card", builtin_cards(), ids=lambda card: card.id)
def test_builtin_persona_is_complete(card: PersonaCard) -> None:
    assert card.spec == "chara_card_v2"
    assert card.creator == "personae"
    assert card.tags and card.personality and card.scenario and card.first_mes
    assert card.extensions["personae"]["id"] == card.id
    assert "curiosity" in card.extensions["personae"]
    examples = parse_example_messages(card.mes_example, char=card.name, user="Ann")
    assert 2 <= card.mes_example.count("<START>") <= 3
    assert {role for role, _ in examples} == {"user", "assistant"}
    assert all("{{" not in text and "<START>" not in text for _, text in examples)
    # the shipped file is exactly what the exporter writes
    assert parse_card_json(dump_card_json(card)) == card
    assert read_png_card(write_png_card(card)).first_mes == card.first_mes
