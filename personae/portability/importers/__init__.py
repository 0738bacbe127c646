"""Readers of the projects personae imports from: acore_bot and MyBella."""

from personae.portability.importers.acore import read_acore
from personae.portability.importers.mybella import read_mybella

__all__ = ["read_acore", "read_mybella"]
