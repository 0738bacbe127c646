"""``.charx``: the Character Card V3 zip (RisuAI's format, read by SillyTavern).

The zip holds ``card.json`` (a ``chara_card_v3`` document) and the files its
``data.assets`` point at with ``embeded://<path in the zip>`` URIs. personae reads
the card and its main icon (the avatar); on export it writes the card, the avatar
as ``assets/icon/images/main.png`` and the asset entries that do not need a file
from the zip (``ccdefault:``, web URLs). Other embedded files (backgrounds,
emotion images) are not kept, so their entries are left out of an export rather
than pointing at files that are not there.
"""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING

from personae.core.errors import CardError

if TYPE_CHECKING:
    from personae.core.cards import PersonaCard

ZIP_MAGIC = b"PK\x03\x04"
EMBEDDED = "embeded://"  # sic: the spec's spelling
ICON_PATH = "assets/icon/images/main.png"
MAX_MEMBER_BYTES = 20 * 1024 * 1024


def is_charx(data: bytes) -> bool:
    return data.startswith(ZIP_MAGIC)


def read_charx(data: bytes) -> tuple[PersonaCard, bytes | None]:
    """The card in a ``.charx`` and its main icon's bytes (None without one)."""
    from personae.core.cards import parse_card_json

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise CardError("The .charx file is not a readable zip archive.") from None
    with archive:
        card_json = _member(archive, "card.json")
        if card_json is None:
            raise CardError("The .charx file has no card.json; it is not a character card.")
        card = parse_card_json(card_json)
        icon = None
        assets = card.extra_fields.get("assets")
        for asset in assets if isinstance(assets, list) else []:
            if not isinstance(asset, dict) or asset.get("type") != "icon":
                continue
            uri = asset.get("uri")
            if isinstance(uri, str) and uri.startswith(EMBEDDED):
                icon = _member(archive, uri.removeprefix(EMBEDDED))
                if icon is not None:
                    break
    return card, icon


def _member(archive: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_MEMBER_BYTES:
        raise CardError(f"{name} in the .charx file is over the 20 MB limit.")
    try:
        with archive.open(info) as member:
            return member.read(MAX_MEMBER_BYTES + 1)[:MAX_MEMBER_BYTES]
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as error:
        raise CardError(f"{name} in the .charx file cannot be read ({error}).") from None


def write_charx(card: PersonaCard, image: bytes | None = None) -> bytes:
    """The card as a ``.charx``: ``card.json`` (V3, with the V1 mirror fields) and,
    with ``image`` (PNG bytes), the icon it names."""
    from personae.core.cards import SPEC_V3, dumps_document, export_document

    document = export_document(card, SPEC_V3)
    data = document["data"]
    kept = [
        asset
        for asset in data.get("assets") or []
        if isinstance(asset, dict)
        and not str(asset.get("uri", "")).startswith(EMBEDDED)
        and not (image is not None and asset.get("type") == "icon")
    ]
    if image is not None:
        kept.insert(0, {"type": "icon", "uri": EMBEDDED + ICON_PATH, "name": "main", "ext": "png"})
    data["assets"] = kept or [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", dumps_document(document))
        if image is not None:
            archive.writestr(ICON_PATH, image)
    return out.getvalue()
