"""PNG plumbing for character cards: text chunks in, text chunks out, and a plain
generated avatar for cards that have no picture.

This module knows nothing about the card format; :mod:`personae.core.cards` decides
what the chunks mean. Every Pillow failure becomes a :class:`CardError`.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import warnings
from collections.abc import Collection, Mapping
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps
from PIL.PngImagePlugin import PngInfo

from personae.core.errors import CardError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
AVATAR_SIZE = 256
MAX_PIXELS = 4096 * 4096
"""The most pixels a card or avatar image may have. Checked from the PNG header
before anything is decoded: a 650 KB file can declare 13000x13000 pixels, which
would take 660 MB to decode."""
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})


def is_png(data: bytes) -> bool:
    return data.startswith(PNG_MAGIC)


def read_text_chunks(data: bytes, keys: Collection[str]) -> dict[str, str]:
    """Return the ``tEXt``/``iTXt``/``zTXt`` chunks of a PNG whose (case-insensitive)
    keyword is in ``keys``, keyed by the lowercased keyword.

    Chunks before the image data are read without decoding any pixels; the image is
    decoded only when a wanted chunk is still missing (SillyTavern writes its chunks
    after the image data). A damaged PNG whose wanted chunks come first still reads.
    """
    wanted = {key.lower() for key in keys}
    if not is_png(data):
        raise CardError("This file is not a PNG image.")
    try:
        with warnings.catch_warnings():
            # Pillow warns of a "decompression bomb" on open; check_dimensions refuses it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG"])
        with image:
            check_dimensions(image)
            found = _pick(image.info, wanted)
            if len(found) == len(wanted):
                return found
            try:
                text = image.text  # type: ignore[attr-defined]  # PngImageFile only
            except Exception as error:  # Pillow raises many types for damaged files
                if found:
                    return found
                raise CardError(
                    f"The PNG image is damaged or truncated ({error}); "
                    "no character data could be read from it."
                ) from error
            return {**_pick(text, wanted), **found}
    except CardError:
        raise
    except Exception as error:  # UnidentifiedImageError, SyntaxError, ValueError, ...
        raise CardError(
            f"The PNG image is damaged or truncated ({error}); "
            "no character data could be read from it."
        ) from error


def check_dimensions(image: Image.Image) -> None:
    """Refuse an image with more than :data:`MAX_PIXELS` pixels (or Pillow's own
    ``Image.MAX_IMAGE_PIXELS``) from its header alone: ``Image.open`` is lazy, so
    nothing has been decoded yet."""
    width, height = image.size
    limit = min(MAX_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_PIXELS)
    if width * height > limit:
        raise CardError(
            f"The image is {width}x{height} pixels, over the limit of {limit:,} pixels "
            f"(for example {int(limit**0.5)}x{int(limit**0.5)}); use a smaller picture."
        )


def _pick(info: Mapping[Any, Any], wanted: set[str]) -> dict[str, str]:
    return {
        key.lower(): str(value)
        for key, value in info.items()
        if isinstance(key, str) and key.lower() in wanted and isinstance(value, str)
    }


def write_text_chunks(
    chunks: Mapping[str, str],
    *,
    image: bytes | None,
    label: str,
    seed: str,
    max_bytes: int,
) -> bytes:
    """Encode ``image`` (any format Pillow reads; ``None`` = a generated avatar showing
    the first letter of ``label`` on a colour derived from ``seed``) as a PNG carrying
    ``chunks`` as uncompressed ``tEXt`` chunks. Text chunks already in ``image`` are
    dropped."""
    picture = make_avatar(label, seed) if image is None else _open_picture(image)
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    out = io.BytesIO()
    try:
        picture.save(out, format="PNG", pnginfo=info)
    except Exception as error:
        raise CardError(f"Could not write the card as a PNG image: {error}") from error
    result = out.getvalue()
    if len(result) > max_bytes:
        raise CardError(
            f"The card PNG would be {len(result) / 1_048_576:.1f} MB, over the "
            f"{max_bytes / 1_048_576:.0f} MB limit; use a smaller avatar image."
        )
    return result


def _open_picture(image: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(image)) as source:
            check_dimensions(source)
            source.load()
            picture = ImageOps.exif_transpose(source)
            if picture.mode not in _PNG_MODES:
                has_alpha = "A" in picture.getbands() or "transparency" in picture.info
                picture = picture.convert("RGBA" if has_alpha else "RGB")
            return picture
    except CardError:
        raise
    except Exception as error:
        raise CardError(
            f"The avatar image could not be read ({error}); use a PNG, JPEG or WebP file."
        ) from error


def make_avatar(label: str, seed: str, size: int = AVATAR_SIZE) -> Image.Image:
    """A plain square avatar: the first letter of ``label`` (or of ``seed`` when
    ``label`` starts with no ASCII letter or digit) in white on a muted colour that
    is stable for ``seed``."""
    letter = next((c for c in label if c.isascii() and c.isalnum()), None)
    if letter is None:
        letter = next((c for c in seed if c.isascii() and c.isalnum()), "?")
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    red, green, blue = colorsys.hsv_to_rgb(digest[0] / 255, 0.45, 0.55)
    background = (int(red * 255), int(green * 255), int(blue * 255))
    picture = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=size * 0.6)
    left, top, right, bottom = draw.textbbox((0, 0), letter.upper(), font=font)
    x = (size - (right - left)) / 2 - left
    y = (size - (bottom - top)) / 2 - top
    draw.text((x, y), letter.upper(), font=font, fill=(255, 255, 255))
    return picture
