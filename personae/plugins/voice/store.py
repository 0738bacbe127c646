"""The voice plugin's rows: uploaded samples (``voice_samples``) and seconds
spoken per user per day (``voice_usage``). The only module of the plugin that
touches the ORM; it returns plain records."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from personae.storage.models import VoiceSample, VoiceUsage


@dataclass(frozen=True, slots=True)
class VoiceSampleRecord:
    """An uploaded voice sample. ``filename`` is its random name under
    ``<data_dir>/voices``; ``cloned_voice_id`` is ``"<engine>:<voice>"`` once a
    cloning engine has made a voice from it."""

    id: int
    owner_id: int
    persona_id: str
    filename: str
    content_type: str
    size: int
    duration: float
    cloned_voice_id: str | None = None
    created_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.created_at is not None:
            data["created_at"] = self.created_at.isoformat()
        return data


def _record(row: VoiceSample) -> VoiceSampleRecord:
    return VoiceSampleRecord(
        id=row.id,
        owner_id=row.owner_id,  # type: ignore[attr-defined]
        persona_id=row.persona_id,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        duration=row.duration,
        cloned_voice_id=row.cloned_voice_id,
        created_at=row.created_at,
    )


class VoiceStore:
    """Samples are always read through their owner; usage through its user."""

    # -- samples -------------------------------------------------------------------

    async def add_sample(
        self,
        *,
        owner_id: int,
        persona_id: str,
        filename: str,
        content_type: str,
        size: int,
        duration: float,
    ) -> VoiceSampleRecord:
        row = await VoiceSample.create(
            owner_id=owner_id,
            persona_id=persona_id,
            filename=filename,
            content_type=content_type,
            size=size,
            duration=duration,
        )
        return _record(row)

    async def sample(self, owner_id: int, sample_id: int) -> VoiceSampleRecord | None:
        row = await VoiceSample.get_or_none(id=sample_id, owner_id=owner_id)
        return None if row is None else _record(row)

    async def samples(
        self, owner_id: int, persona_id: str | None = None
    ) -> list[VoiceSampleRecord]:
        query = VoiceSample.filter(owner_id=owner_id)
        if persona_id is not None:
            query = query.filter(persona_id=persona_id)
        return [_record(r) for r in await query.order_by("persona_id", "-id")]

    async def count_samples(self, owner_id: int, persona_id: str) -> int:
        return await VoiceSample.filter(owner_id=owner_id, persona_id=persona_id).count()

    async def persona_sample(
        self, persona_id: str, owner_id: int | None, sample_id: int | None = None
    ) -> VoiceSampleRecord | None:
        """The sample that gives ``persona_id`` its voice: ``sample_id`` when given,
        else the newest. ``owner_id`` is the persona's owner; for a system persona
        (None), samples uploaded by administrators count."""
        query = VoiceSample.filter(persona_id=persona_id)
        if owner_id is None:
            query = query.filter(owner__is_admin=True)
        else:
            query = query.filter(owner_id=owner_id)
        if sample_id is not None:
            query = query.filter(id=sample_id)
        row = await query.order_by("-id").first()
        return None if row is None else _record(row)

    async def set_cloned(self, sample_id: int, cloned_voice_id: str | None) -> None:
        await VoiceSample.filter(id=sample_id).update(cloned_voice_id=cloned_voice_id)

    async def delete_sample(self, owner_id: int, sample_id: int) -> bool:
        return await VoiceSample.filter(id=sample_id, owner_id=owner_id).delete() > 0

    async def forget_samples(self, owner_id: int, persona_id: str | None) -> int:
        query = VoiceSample.filter(owner_id=owner_id)
        if persona_id is not None:
            query = query.filter(persona_id=persona_id)
        return await query.delete()

    # -- usage ---------------------------------------------------------------------

    async def used_seconds(self, user_id: int, day: date) -> float:
        row = await VoiceUsage.get_or_none(user_id=user_id, day=day)
        return 0.0 if row is None else float(row.seconds)

    async def add_seconds(self, user_id: int, day: date, seconds: float) -> None:
        for _ in range(3):
            updated = await VoiceUsage.filter(user_id=user_id, day=day).update(
                seconds=F("seconds") + seconds
            )
            if updated:
                return
            try:
                await VoiceUsage.create(user_id=user_id, day=day, seconds=seconds)
                return
            except IntegrityError:
                continue  # created concurrently: add to it on the next pass
        raise RuntimeError("could not record voice usage")

    async def usage(self, user_id: int) -> list[dict[str, Any]]:
        rows = await VoiceUsage.filter(user_id=user_id).order_by("day")
        return [{"day": r.day.isoformat(), "seconds": round(r.seconds, 3)} for r in rows]

    async def forget_usage(self, user_id: int) -> int:
        return await VoiceUsage.filter(user_id=user_id).delete()
