"""Card imports stay within the limits of a created persona: a PNG is refused
from its header when it declares too many pixels (before anything is decoded),
and a card whose fields are over the limits is refused with a message naming the
field, on every import path (file, card folder, command line)."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest

from personae.core.card_png import MAX_PIXELS
from personae.core.cards import MAX_FIELD_CHARS, load_card, read_png_card
from personae.core.errors import CardError
from personae.core.personas import PersonaRegistry
from personae.storage.personas import PersonaStore
from personae.testing.fake_ollama import FakeOllama
from tests.test_cli import personae


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(width: int, height: int, card: dict[str, object]) -> bytes:
    """A few hundred bytes that declare ``width`` x ``height`` pixels: the header,
    a token of image data and the card's ``chara`` chunk after it (where
    SillyTavern writes it, so reading the chunk would mean decoding the image)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chara = b"chara\x00" + base64.b64encode(json.dumps(card).encode())
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _chunk(b"tEXt", chara)
        + _chunk(b"IEND", b"")
    )


def card(**fields: object) -> dict[str, object]:
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Big", **fields}}


def test_a_png_declaring_13000x13000_pixels_is_refused_from_its_header() -> None:
    data = huge_png(13000, 13000, card())
    assert len(data) < 2048

    with pytest.raises(CardError, match=r"13000x13000 pixels, over the limit"):
        read_png_card(data)


def test_a_png_within_the_pixel_limit_still_reads() -> None:
    side = int(MAX_PIXELS**0.5)
    with pytest.raises(CardError) as refused:
        read_png_card(huge_png(side, side + 1, card()))
    assert "pixels" in str(refused.value)
    # exactly at the limit the header passes and the (truncated) data is what fails
    with pytest.raises(CardError, match="damaged or truncated"):
        read_png_card(huge_png(side, side, card()))


def test_a_card_file_with_a_7_mb_description_is_refused_naming_the_field(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps(card(description="x" * 7_000_000)))

    with pytest.raises(CardError) as refused:
        load_card(path)

    message = str(refused.value)
    assert "'description' is 7,000,000 characters" in message
    assert f"{MAX_FIELD_CHARS:,}" in message


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"tags": [f"t{n}" for n in range(51)]}, "51 tags"),
        ({"alternate_greetings": ["hi", "y" * 20_001]}, "alternate_greetings"),
        ({"name": "N" * 201}, "'name'"),
        ({"personality": "calm\x00"}, "NUL"),
        ({"character_book": {"entries": [{"content": "z" * 3_000_000}]}}, "'character_book'"),
    ],
)
def test_every_field_limit_applies_to_imported_cards(
    tmp_path: Path, fields: dict[str, object], named: str
) -> None:
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card(**fields)))

    with pytest.raises(CardError, match=named):
        load_card(path)


def test_a_card_folder_skips_an_oversized_card_and_loads_the_rest(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_text(json.dumps(card(description="x" * 30_000)))
    (tmp_path / "small.json").write_text(json.dumps(card(name="Small")))
    registry = PersonaRegistry(PersonaStore())

    assert registry.load_dir(tmp_path) == 1
    assert registry.has_system("small") and not registry.has_system("big")


async def test_the_import_command_refuses_an_oversized_card_with_a_clear_error(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    (tmp_path / "big.json").write_text(json.dumps(card(description="x" * 7_000_000)))

    code, _, err = await personae(tmp_path, fake_ollama.url, "personas", "import", "big.json")

    assert code == 1
    assert "7,000,000 characters" in " ".join(err.split())
    assert "Traceback" not in err
