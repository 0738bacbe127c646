"""Users and their platform identities."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from personae.storage.models import Identity, User
from personae.storage.records import UserRecord


def _record(user: User) -> UserRecord:
    return UserRecord(id=user.id, name=user.name, is_admin=user.is_admin)


class UserStore:
    """Maps platform identities to personae's internal user ids."""

    async def resolve(self, platform: str, external_id: str, name: str | None = None) -> int:
        """The internal user id for a platform identity, created on first sight.

        Safe under concurrency: two first messages from the same identity at once
        end with one user, because (platform, external_id) is unique."""
        for _ in range(3):
            identity = await Identity.get_or_none(platform=platform, external_id=external_id)
            if identity is not None:
                return identity.user_id  # type: ignore[attr-defined]
            try:
                async with in_transaction("default") as conn:
                    user = await User.create(name=(name or external_id)[:100], using_db=conn)
                    await Identity.create(
                        user=user, platform=platform, external_id=external_id, using_db=conn
                    )
                return user.id
            except IntegrityError:
                continue  # someone else created it first; read theirs
        raise RuntimeError(f"could not resolve identity {platform}:{external_id}")

    async def create(self, name: str, *, is_admin: bool = False) -> UserRecord:
        return _record(await User.create(name=name[:100], is_admin=is_admin))

    async def get(self, user_id: int) -> UserRecord | None:
        user = await User.get_or_none(id=user_id)
        return _record(user) if user else None

    async def link(self, user_id: int, platform: str, external_id: str) -> None:
        """Attach another platform identity to an existing user."""
        await Identity.update_or_create(
            platform=platform, external_id=external_id, defaults={"user_id": user_id}
        )

    async def identities(self, user_id: int) -> list[tuple[str, str]]:
        rows = await Identity.filter(user_id=user_id).order_by("id")
        return [(row.platform, row.external_id) for row in rows]
