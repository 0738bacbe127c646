"""Web accounts: users with a login name and password, their API tokens and their
browser sessions.

Passwords are hashed with Argon2id (argon2-cffi); API tokens and session cookies
are random secrets of which only the SHA-256 hash is stored, so a copy of the
database lets nobody log in. Each account is also a platform identity
``("web", str(user id))``, so adapters find web users like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from personae.core.cache import RefreshingCache
from personae.core.errors import PersonaeError
from personae.storage.models import ApiToken, Identity, User, WebSession

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
TOKEN_PREFIX = "pk_"
WEB_PLATFORM = "web"
_TOUCH_EVERY = timedelta(minutes=1)


class AccountError(PersonaeError):
    """The user sees why the account could not be created or changed (name taken,
    password too short ...)."""


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    name: str
    is_admin: bool
    current_persona: str | None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    account: Account
    csrf_token: str
    expires_at: datetime


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _account(user: User) -> Account:
    return Account(
        id=user.id,
        username=user.username or "",
        name=user.name,
        is_admin=user.is_admin,
        current_persona=user.current_persona,
    )


def _token(row: ApiToken) -> TokenRecord:
    return TokenRecord(
        row.id, row.name, row.prefix, row.created_at, row.last_used_at, row.revoked_at
    )


def normalize_username(username: str) -> str:
    """The canonical (lower-case) login name; :class:`AccountError` when invalid."""
    canonical = username.strip().lower()
    if not USERNAME_RE.fullmatch(canonical):
        raise AccountError(
            "A user name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    return canonical


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"The password is too short; use at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"The password is too long; use at most {MAX_PASSWORD} characters.")


_SIGNUP_LOCK = 0x7065_7273_6F6E_6165 & 0x7FFF_FFFF_FFFF_FFFF
"""The PostgreSQL advisory lock that orders account creation ("persona" in hex)."""


async def _serialize_signups(conn: BaseDBAsyncClient) -> None:
    """Make account creations take turns across processes for the rest of the
    transaction, so "is this the first account?" and the insert that follows are
    one step and exactly one first account becomes the administrator.

    PostgreSQL: a transaction-level advisory lock, released at commit. SQLite: a
    write as the transaction's first statement, which takes the database's write
    lock at once (like ``BEGIN IMMEDIATE``; another process waits for it) instead of
    reading first and failing to upgrade to a write later."""
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_SIGNUP_LOCK])
    else:
        await conn.execute_query("UPDATE users SET id = id WHERE 0")


class AccountStore:
    """Accounts, API tokens and browser sessions. Every token or session method
    that names a user only ever touches that user's rows."""

    def __init__(
        self, hasher: PasswordHasher | None = None, *, cache_seconds: float = 30.0
    ) -> None:
        """``cache_seconds``: how long a token's or session's account may be served
        from memory. Changes made through this store apply at once; changes made by
        another process (a revoked token, a deleted account) within that time."""
        self.hasher = hasher or PasswordHasher()
        self._create_lock = asyncio.Lock()
        self._dummy_hash: str | None = None
        self._tokens: RefreshingCache[str, Account | None] = RefreshingCache(
            self._token_account, ttl=cache_seconds, max_size=4096
        )
        self._sessions: RefreshingCache[str, SessionRecord | None] = RefreshingCache(
            self._session_record, ttl=cache_seconds, max_size=4096
        )

    def changed(self) -> None:
        """Forget every cached token and session: call after changing accounts,
        tokens or sessions other than through this store (e.g. merging accounts)."""
        self._tokens.invalidate()
        self._sessions.invalidate()

    # -- accounts ------------------------------------------------------------------

    async def create(
        self,
        username: str,
        password: str,
        *,
        name: str | None = None,
        is_admin: bool | None = None,
    ) -> Account:
        """Create an account. ``is_admin=None`` makes the first account the
        administrator. Raises :class:`AccountError` when the name is taken."""
        canonical = normalize_username(username)
        check_password(password)
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        async with self._create_lock:
            try:
                async with in_transaction("default") as conn:
                    await _serialize_signups(conn)
                    first = not await User.filter(username__isnull=False).using_db(conn).exists()
                    user = await User.create(
                        name=(name or canonical)[:100],
                        username=canonical,
                        password_hash=password_hash,
                        is_admin=first if is_admin is None else is_admin,
                        using_db=conn,
                    )
                    await Identity.create(
                        user=user, platform=WEB_PLATFORM, external_id=str(user.id), using_db=conn
                    )
            except IntegrityError:
                raise AccountError(f"The user name {canonical!r} is taken.") from None
        return _account(user)

    async def count(self) -> int:
        """How many web accounts exist."""
        return await User.filter(username__isnull=False).count()

    async def get(self, user_id: int) -> Account | None:
        user = await User.get_or_none(id=user_id, username__isnull=False)
        return _account(user) if user else None

    async def by_username(self, username: str) -> Account | None:
        user = await User.get_or_none(username=username.strip().lower())
        return _account(user) if user else None

    async def verify(self, username: str, password: str) -> Account | None:
        """The account when the password is right, else None. Takes as long for an
        unknown name as for a wrong password."""
        user = await User.get_or_none(username=username.strip().lower())
        if user is None or not user.password_hash:
            await asyncio.to_thread(self._verify, await self._dummy(), password)
            return None
        if not await asyncio.to_thread(self._verify, user.password_hash, password):
            return None
        if self.hasher.check_needs_rehash(user.password_hash):
            new_hash = await asyncio.to_thread(self.hasher.hash, password)
            await User.filter(id=user.id).update(password_hash=new_hash)
        return _account(user)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(self.hasher.hash, secrets.token_hex(16))
        return self._dummy_hash

    async def set_password(self, user_id: int, password: str) -> None:
        """Change the password and end every browser session of the user."""
        check_password(password)
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        async with in_transaction("default") as conn:
            await User.filter(id=user_id).using_db(conn).update(password_hash=password_hash)
            await WebSession.filter(user_id=user_id).using_db(conn).delete()
        self.changed()

    async def set_current_persona(self, user_id: int, persona_id: str | None) -> None:
        await User.filter(id=user_id).update(current_persona=persona_id)
        self.changed()

    # -- API tokens ----------------------------------------------------------------

    async def create_token(self, user_id: int, name: str) -> tuple[TokenRecord, str]:
        """A new token for the user: (its record, the secret). The secret is shown
        once; only its hash is stored."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = await ApiToken.create(
            user_id=user_id, name=name[:100], token_hash=_hash(secret), prefix=secret[:10]
        )
        return _token(row), secret

    async def tokens(self, user_id: int) -> list[TokenRecord]:
        """The user's tokens that are not revoked, oldest first."""
        rows = await ApiToken.filter(user_id=user_id, revoked_at__isnull=True).order_by("id")
        return [_token(row) for row in rows]

    async def revoke_token(self, user_id: int, token_id: int) -> bool:
        """Revoke one of the user's tokens; False when the user has no such token."""
        updated = await ApiToken.filter(
            id=token_id, user_id=user_id, revoked_at__isnull=True
        ).update(revoked_at=datetime.now(UTC))
        self.changed()
        return updated > 0

    async def authenticate_token(self, secret: str) -> Account | None:
        """The account a bearer token belongs to, or None (unknown or revoked)."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
            return None
        return await self._tokens.get(_hash(secret))

    async def _token_account(self, token_hash: str) -> Account | None:
        row = await ApiToken.get_or_none(
            token_hash=token_hash, revoked_at__isnull=True
        ).select_related("user")
        if row is None:
            return None
        user = row.user
        now = datetime.now(UTC)
        if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
            await ApiToken.filter(id=row.id).update(last_used_at=now)
        return _account(user)

    # -- browser sessions ----------------------------------------------------------

    async def create_session(self, user_id: int, lifetime: timedelta) -> tuple[str, SessionRecord]:
        """A new login session: (the cookie secret, the session). Only the secret's
        hash is stored; the CSRF token is sent back with every state change."""
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires_at = datetime.now(UTC) + lifetime
        await WebSession.create(
            id=_hash(secret), user_id=user_id, csrf_token=csrf, expires_at=expires_at
        )
        account = await self.get(user_id)
        if account is None:
            raise AccountError("There is no such account.")
        return secret, SessionRecord(account, csrf, expires_at)

    async def session(self, secret: str) -> SessionRecord | None:
        """The live session for a cookie secret, or None (unknown or expired)."""
        if not secret or len(secret) > 128:
            return None
        session_id = _hash(secret)
        record = await self._sessions.get(session_id)
        if record is not None and record.expires_at <= datetime.now(UTC):
            await WebSession.filter(id=session_id).delete()
            self._sessions.invalidate(session_id)
            return None
        return record

    async def _session_record(self, session_id: str) -> SessionRecord | None:
        row = await WebSession.get_or_none(id=session_id)
        if row is None:
            return None
        account = await self.get(row.user_id)  # type: ignore[attr-defined]
        if account is None:
            return None
        return SessionRecord(account, row.csrf_token, row.expires_at)

    async def delete_session(self, secret: str) -> bool:
        deleted = await WebSession.filter(id=_hash(secret)).delete() > 0
        self._sessions.invalidate(_hash(secret))
        return deleted

    async def delete_expired_sessions(self) -> int:
        deleted = await WebSession.filter(expires_at__lte=datetime.now(UTC)).delete()
        self._sessions.invalidate()
        return deleted
