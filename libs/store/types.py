"""Column types every service's tables share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every engine.

    SQLite has no timestamp type and SQLAlchemy drops the offset when it stores one as text, so
    everything is converted to UTC on the way in and tagged UTC on the way out: code reading a row
    gets the same aware datetime on SQLite as on PostgreSQL, and SQLite's text comparison
    (`due_at <= :now`) stays in chronological order. The storage is `DateTime(timezone=True)`'s,
    so a column changed to this type needs no migration.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
