"""Data portability: backups, memory export/import/merge, imports from acore_bot
and MyBella with dry runs, verification and exact rollback. See docs/portability.md."""

from personae.portability.backup import backup, backup_before_migrate, restore
from personae.portability.errors import PortabilityError
from personae.portability.manifest import Manifest, rollback
from personae.portability.merge import MergeResult, merge_memory
from personae.portability.records import ImportBatch
from personae.portability.writer import ImportResult, run_import

__all__ = [
    "ImportBatch",
    "ImportResult",
    "Manifest",
    "MergeResult",
    "PortabilityError",
    "backup",
    "backup_before_migrate",
    "merge_memory",
    "restore",
    "rollback",
    "run_import",
]
