"""The error portability commands raise.

It lives here rather than in :mod:`personae.core.errors` because only this
package raises it; it is a :class:`~personae.core.errors.PersonaeError`, so every
front end shows its message without a traceback.
"""

from __future__ import annotations

from personae.core.errors import PersonaeError


class PortabilityError(PersonaeError):
    """The user sees why a backup, restore, export, import, merge or rollback did
    not happen (nothing was written) and what to do about it."""
