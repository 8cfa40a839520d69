"""SQLAlchemy async engine and sessions, SQLite (WAL) by default and PostgreSQL by URL, migrations."""

from libs.store.compiled import Compiled
from libs.store.db import Base, Database, normalize_url
from libs.store.group import GroupCommit, after_commit
from libs.store.migrate import migrated, upgrade
from libs.store.types import UTCDateTime

__all__ = [
    "Base",
    "Compiled",
    "Database",
    "GroupCommit",
    "UTCDateTime",
    "after_commit",
    "migrated",
    "normalize_url",
    "upgrade",
]
