"""What real Discord refuses in a message body, for the loopback fake.

Discord answers these with ``400 Bad Request`` and error code 50035 ("Invalid
Form Body"), naming the field; discord.py raises :class:`discord.HTTPException`
with status 400 for them. A fake that accepted them would hide the bugs a user
meets (a long reply cut wrongly, a persona called "Discord Helper" whose replies
never arrive)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CONTENT_LIMIT = 2000
WEBHOOK_USERNAME_LIMIT = 80
_FORBIDDEN_USERNAME = re.compile(r"clyde|discord", re.IGNORECASE)


def _field_error(field: str, code: str, message: str) -> dict[str, Any]:
    return {
        "code": 50035,
        "message": "Invalid Form Body",
        "errors": {field: {"_errors": [{"code": code, "message": message}]}},
    }


def message_errors(body: dict[str, Any], *, webhook: bool = False) -> dict[str, Any] | None:
    """The 400 body Discord sends for this message (create, edit, or a webhook's
    execute with ``webhook=True``), or None when Discord would accept it."""
    content = body.get("content")
    if isinstance(content, str) and len(content) > CONTENT_LIMIT:
        return _field_error(
            "content", "BASE_TYPE_MAX_LENGTH", f"Must be {CONTENT_LIMIT} or fewer in length."
        )
    username = body.get("username")
    if webhook and isinstance(username, str):
        if not 1 <= len(username) <= WEBHOOK_USERNAME_LIMIT:
            return _field_error(
                "username",
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {WEBHOOK_USERNAME_LIMIT} in length.",
            )
        found = _FORBIDDEN_USERNAME.search(username)
        if found:
            word = found.group(0).lower()
            return _field_error(
                "username", "USERNAME_INVALID_CONTAINS", f'Username cannot contain "{word}"'
            )
    return None


INTERACTION_ACK_SECONDS = 3.0
"""Discord's deadline for the first answer to an interaction (a callback); after it
the interaction token is unknown (404, code 10062) to callbacks."""


@dataclass(slots=True)
class _Bucket:
    limit: int
    per: float
    remaining: int
    resets_at: float


@dataclass(frozen=True, slots=True)
class Limit:
    """``limit`` requests per ``per`` seconds."""

    limit: int
    per: float


DEFAULT_LIMITS: dict[str, Limit] = {
    "messages": Limit(5, 5.0),  # create in one channel
    "edits": Limit(5, 5.0),  # edit or delete in one channel
    "webhook": Limit(5, 2.0),  # execute one webhook
    "webhook-edits": Limit(5, 2.0),
    "typing": Limit(5, 5.0),
}
GLOBAL_LIMIT = Limit(50, 1.0)


def bucket_of(method: str, path: str) -> str | None:
    """The rate-limit bucket of a REST call, keyed by its major parameter, as Discord
    keys them (a channel for messages, a webhook for webhook messages)."""
    parts = path.strip("/").split("/")
    if parts[0] == "channels" and len(parts) >= 3:
        if parts[2] == "messages":
            kind = "messages" if method == "POST" and len(parts) == 3 else "edits"
            return f"{kind}:{parts[1]}"
        if parts[2] == "typing":
            return f"typing:{parts[1]}"
    if parts[0] == "webhooks" and len(parts) >= 3:
        kind = "webhook" if len(parts) == 3 else "webhook-edits"
        return f"{kind}:{parts[1]}"
    return None


class RateLimits:
    """Discord's per-route buckets and global limit, with the ``X-RateLimit-*``
    headers it sends, so the real client's own rate limiting is exercised: it reads
    the headers, waits when a bucket is empty, and retries after a 429."""

    def __init__(
        self,
        limits: dict[str, Limit] | None = None,
        global_limit: Limit = GLOBAL_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self.global_limit = global_limit
        self.clock = clock
        self.enabled = True
        self.refused = 0
        """429s given so far."""
        self._buckets: dict[str, _Bucket] = {}
        self._global: _Bucket | None = None

    def _take(self, key: str, limit: Limit, now: float) -> tuple[_Bucket, bool]:
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.resets_at:
            bucket = _Bucket(limit.limit, limit.per, limit.limit, now + limit.per)
            self._buckets[key] = bucket
        if bucket.remaining <= 0:
            return bucket, False
        bucket.remaining -= 1
        return bucket, True

    def check(self, method: str, path: str) -> tuple[dict[str, str], dict[str, Any] | None]:
        """(headers for the answer, a 429 body when the request is refused)."""
        if not self.enabled:
            return {}, None
        now = self.clock()
        global_bucket, allowed = self._take("global", self.global_limit, now)
        if not allowed:
            self.refused += 1
            retry = round(max(global_bucket.resets_at - now, 0.001), 3)
            return (
                {"Retry-After": str(retry), "X-RateLimit-Global": "true",
                 "X-RateLimit-Scope": "global"},
                {"message": "You are being rate limited.", "retry_after": retry, "global": True},
            )  # fmt: skip
        key = bucket_of(method, path)
        if key is None:
            return {}, None
        limit = self.limits.get(key.split(":", 1)[0])
        if limit is None:
            return {}, None
        bucket, allowed = self._take(key, limit, now)
        reset_after = round(max(bucket.resets_at - now, 0.001), 3)
        headers = {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(max(bucket.remaining, 0)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": str(reset_after),
            "X-RateLimit-Bucket": key.split(":", 1)[0],
        }
        if allowed:
            return headers, None
        self.refused += 1
        headers |= {"Retry-After": str(reset_after), "X-RateLimit-Scope": "user"}
        return headers, {
            "message": "You are being rate limited.",
            "retry_after": reset_after,
            "global": False,
        }
