"""Persona pictures on disk: ``<data_dir>/avatars/<32 hex digits>.png``, named in
the card's ``extensions.personae.avatar``. The web service serves them; a card
imported on the command line keeps its picture here too."""

from __future__ import annotations

import io
import re
import secrets
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from personae.core.errors import CardError

MAX_SIDE = 1024
MAX_PIXELS = 40_000_000
NAME_RE = re.compile(r"[0-9a-f]{32}\.png")


def avatars_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "avatars"


def clean_png(data: bytes, max_side: int = MAX_SIDE) -> bytes:
    """The picture re-encoded as a plain PNG (no text chunks, so no embedded card),
    at most ``max_side`` pixels a side."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise ValueError("too many pixels")
                image.load()
                picture = image.convert("RGBA")
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ):
        raise CardError("The card's picture is damaged or too large.") from None
    picture.thumbnail((max_side, max_side))
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    return out.getvalue()


def store_avatar(data_dir: Path, image: bytes, max_side: int = MAX_SIDE) -> str:
    """Write ``image`` (any format Pillow reads) as a new avatar file; its name."""
    png = clean_png(image, max_side)
    folder = avatars_dir(data_dir)
    name = secrets.token_hex(16) + ".png"
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp"
    temporary.write_bytes(png)
    temporary.replace(folder / name)
    return name


def read_avatar(data_dir: Path, name: str | None) -> bytes | None:
    """The avatar file's bytes, or None when there is none."""
    if not name or not NAME_RE.fullmatch(name):
        return None
    try:
        return (avatars_dir(data_dir) / name).read_bytes()
    except OSError:
        return None


def remove_avatar(data_dir: Path, name: str | None) -> None:
    if name and NAME_RE.fullmatch(name):
        (avatars_dir(data_dir) / name).unlink(missing_ok=True)
