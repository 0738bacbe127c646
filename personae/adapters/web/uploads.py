"""Reading request bodies within limits, recognising uploads by their content,
and re-encoding avatar images."""

from __future__ import annotations

import asyncio
import io
import json
import re
import warnings
from typing import Literal, TypeVar

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ValidationError

from personae.adapters.web.problems import Problem, validation_problem
from personae.core.card_png import MAX_PIXELS, check_dimensions
from personae.core.errors import CardError

M = TypeVar("M", bound=BaseModel)
Kind = Literal["png", "jpeg", "gif", "webp", "json"]
MAX_IMAGE_PIXELS = MAX_PIXELS
MULTIPART_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    AssertionError,
    KeyError,
    HttpProcessingError,
)
"""What aiohttp's multipart reader raises for a malformed body (a part header
with control characters is an ``InvalidHeader``): answered with a 400."""
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def malformed_multipart() -> Problem:
    return Problem(400, "Malformed multipart body", "The form data is unreadable.")


def safe_filename(name: str | None) -> str:
    """The last part of an uploaded file's name, without control characters or
    path separators (``filename*=`` can encode any byte, NUL included)."""
    return _UNSAFE_NAME.sub("", (name or "").replace("\\", "/").rsplit("/", 1)[-1])[:255]


def too_large(limit: int) -> Problem:
    return Problem(413, "Request body too large", f"The body is over the {limit:,}-byte limit.")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or a 413 problem when it is longer than ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: web.Request, model: type[M], limit: int) -> M:
    """The JSON body validated by ``model`` (an empty body is ``{}``)."""
    content_type = request.headers.get("Content-Type", "application/json").lower()
    raw = await read_body(request, limit)
    if raw.strip() and "json" not in content_type:
        raise Problem(415, "Unsupported media type", "Send the body as application/json.")
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        raise Problem(400, "Malformed JSON", "The request body is not valid JSON.") from None
    if has_nul(data):
        raise Problem(
            422, "Invalid request body", "Text in the request may not contain NUL characters."
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_problem(error) from None


def has_nul(data: object) -> bool:
    """Whether any string (or object key) in decoded JSON holds a NUL character,
    which PostgreSQL cannot store in text."""
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


async def read_upload(request: web.Request, limit: int) -> bytes:
    """An uploaded file: the raw body, or the first file part of a
    ``multipart/form-data`` body. Its name and declared type are ignored."""
    if request.content_type.startswith("multipart/"):
        if request.content_length is not None and request.content_length > limit + 64 * 1024:
            raise too_large(limit)
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.filename is None:
                    continue
                return await read_part(part, limit)
        except MULTIPART_ERRORS:
            raise malformed_multipart() from None
        raise Problem(400, "No file uploaded", "The form has no file part.")
    body = await read_body(request, limit)
    if not body:
        raise Problem(400, "No file uploaded", "The request body is empty.")
    return body


async def read_part(part: BodyPartReader, limit: int) -> bytes:
    """A multipart part's content; 413 as soon as it passes ``limit`` bytes."""
    received = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        received.extend(chunk)
        if len(received) > limit:
            raise too_large(limit)
    return bytes(received)


def sniff(data: bytes) -> Kind | None:
    """What a file is, from its first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        return "json"
    return None


def _reencode(data: bytes, max_side: int) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            check_dimensions(image)  # from the header, before decoding
            image.load()
            picture = image.convert("RGBA")
    picture.thumbnail((max_side, max_side))
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    return out.getvalue()


async def reencode_avatar(data: bytes, max_side: int) -> bytes:
    """A clean PNG (no metadata, at most ``max_side`` pixels a side) from a PNG,
    JPEG, GIF or WebP image; a 415/422 problem for anything else."""
    if sniff(data) not in ("png", "jpeg", "gif", "webp"):
        raise Problem(415, "Unsupported image type", "Upload a PNG, JPEG, GIF or WebP image.")
    try:
        return await asyncio.to_thread(_reencode, data, max_side)
    except CardError as error:
        raise Problem(422, "Image too large", str(error)) from None
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ):
        raise Problem(422, "Unreadable image", "The image is damaged or too large.") from None
