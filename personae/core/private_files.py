"""Files the service creates for its data are private to the account it runs as:
0600 files in 0700 folders, whatever the process's umask.

The database file (SQLite gives its ``-wal`` and ``-shm`` files the database
file's mode), avatars, voice files and backups are created through these
functions. Folders and files that already exist keep the mode they have.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``path`` as a folder, creating it and any missing parents as 0700 folders."""
    missing: list[Path] = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, DIR_MODE)  # mkdir's mode is reduced by the umask
    return Path(path)


def create_private(path: Path) -> bool:
    """Create ``path`` as an empty 0600 file (and its folder as 0700) unless it
    exists, before a library opens it. True when it was created."""
    private_dir(Path(path).parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    os.close(descriptor)
    os.chmod(path, FILE_MODE)
    return True


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically as a 0600 file: a temporary file in
    the same (0700) folder replaces it, so a reader never sees half a file."""
    path = Path(path)
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
