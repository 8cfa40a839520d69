"""Reads and writes of `tpl_release` on the per-order paths: the warehouse handlers, shipment
reports and 997s.

The statements are built once on the table and run as compiled statements (libs.store.Compiled)
with parameter dicts: every release message and report runs them, and an ORM get, add or flush
costs several times the SQL it sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import Compiled, Database
from services.tpl_adapter.store.tables import ReleaseRow

#: A `tpl_release` row as read: its attributes are ReleaseRow's columns.
StoredRelease = Row[Any]

_RELEASE = ReleaseRow.__table__
_CONTROL = bindparam("b_control")
_GET = Compiled(select(_RELEASE).where(_RELEASE.c.release_id == bindparam("b_release_id")))
_OF_CONTROL = Compiled(
    select(_RELEASE).where(or_(_RELEASE.c.edi_control == _CONTROL, _RELEASE.c.cancel_control == _CONTROL))
)
_ADD = Compiled(insert(_RELEASE))
# WHERE parameters are named b_* so they never collide with the columns a change sets.
_CHANGE = Compiled(update(_RELEASE).where(_RELEASE.c.release_id == bindparam("b_release_id")))


async def get(session: AsyncSession, release_id: str) -> StoredRelease | None:
    """The release's row, or None."""
    return (await session.execute(_GET, {"b_release_id": release_id})).first()


async def read(db: Database, release_id: str) -> StoredRelease | None:
    """The release's row as a read of its own (`Database.fetch`), outside any transaction."""
    return (await db.fetch(_GET, {"b_release_id": release_id})).first()


async def of_control(session: AsyncSession, control: int) -> Sequence[StoredRelease]:
    """The releases whose 940 or cancelling 940 went out under interchange `control`."""
    return (await session.execute(_OF_CONTROL, {"b_control": control})).all()


async def add(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert a release row (`values` by column name)."""
    await session.execute(_ADD, values)


async def change(session: AsyncSession, release_id: str, **values: Any) -> None:
    """Set the columns in `values` on the release's row (none: nothing happens)."""
    await session.execute(_CHANGE, {"b_release_id": release_id, **values})
