"""What real Discord refuses in a message body, for the loopback fake.

Discord answers these with ``400 Bad Request`` and error code 50035 ("Invalid
Form Body"), naming the field; discord.py raises :class:`discord.HTTPException`
with status 400 for them. A fake that accepted them would hide the bugs a user
meets (a long reply cut wrongly, a persona called "Discord Helper" whose replies
never arrive)."""

from __future__ import annotations

import re
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
