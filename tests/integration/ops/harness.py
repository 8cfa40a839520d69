"""Starts the real ops service (database, event bus with its consumers, gRPC on port 0) for tests,
publishes the events other services would publish, and reads what ops published back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
import nats
from google.protobuf.message import Message
from nats.js.errors import NotFoundError
from sqlalchemy import func, select

from libs.bus.envelope import new_event_id, publish_headers, stamp_meta
from libs.bus.streams import subject_for
from libs.store import Database
from retail.common.v1 import common_pb2
from retail.ops.v1 import ops_pb2, ops_service_pb2, ops_service_pb2_grpc
from services.ops.app import Running, running
from services.ops.config import OpsSettings
from services.ops.store.tables import ExceptionRow

pb = ops_service_pb2
T = TypeVar("T")


@dataclass
class OpsStack:
    """A running ops service, its client stub and a NATS connection to publish and read with."""

    app: Running
    stub: ops_service_pb2_grpc.OpsServiceStub
    nc: nats.NATS

    async def publish(
        self,
        event: Message,
        *,
        source: int = common_pb2.SOURCE_SYSTEM_MESH,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
        msg_id: str | None = None,
    ) -> str:
        """Publish an event as its producer would (meta stamped, `Nats-Msg-Id` = event id).

        Args:
            event: the event.
            source: `meta.source_system`.
            event_id: reuse an event id (a redelivery of the same event).
            occurred_at: `meta.occurred_at` (default now).
            msg_id: a different `Nats-Msg-Id` for the same event id (a republish after the
                server's duplicate window, which only the consumer's inbox can catch).
        """
        event_id = event_id or new_event_id()
        event.meta.source_system = source
        stamp_meta(
            event,
            event_id=event_id,
            correlation_id=f"flow-{event_id}",
            key="test",
            producer="test",
            occurred_at=occurred_at or datetime.now(UTC),
        )
        headers = publish_headers(event.DESCRIPTOR.full_name, event_id, f"flow-{event_id}", None)
        if msg_id is not None:
            headers["Nats-Msg-Id"] = msg_id
        await self.nc.jetstream().publish(subject_for(event), event.SerializeToString(), headers=headers)
        return event_id

    async def exceptions(self, **filters: Any) -> list[ops_pb2.BusinessException]:
        """Every page of ListExceptions with `filters`."""
        found: list[ops_pb2.BusinessException] = []
        token = ""
        while True:
            reply = await self.stub.ListExceptions(
                pb.ListExceptionsRequest(page={"page_token": token, "page_size": 100}, **filters), timeout=10
            )
            found += reply.exceptions
            token = reply.page.next_page_token
            if not token:
                return found

    async def ops_events(self, event_type: type[Message]) -> list[Message]:
        """The events of `event_type` ops published on the OPS stream so far (via its outbox)."""
        js = self.nc.jetstream()
        info = await js.stream_info("OPS")
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                stored = await js.get_msg("OPS", seq)
            except NotFoundError:
                continue
            if stored.subject == subject_for(event_type):
                found.append(event_type.FromString(stored.data))
        return found


async def until(check: Callable[[], Awaitable[T]], what: str, timeout: float = 45.0) -> T:
    """Poll `check` until it returns something truthy, or fail naming `what` and the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {value!r}")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def ops_stack(
    database_url: str, nats_url: str, *, orders_addr: str = "127.0.0.1:1"
) -> AsyncIterator[OpsStack]:
    """The ops service on port 0 against a real database and nats-server."""
    settings = OpsSettings(
        grpc_port=0,
        metrics_port=0,
        http_port=None,
        database_url=database_url,
        nats_url=nats_url,
        orders_addr=orders_addr,
    )
    async with running(settings, with_metrics=False) as app:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.server.port}")
        nc = await nats.connect(nats_url)
        try:
            yield OpsStack(app, ops_service_pb2_grpc.OpsServiceStub(channel), nc)
        finally:
            await nc.drain()
            await channel.close()


async def open_count(db: Database) -> int:
    """Not-resolved exception rows, straight from the table."""
    async with db.read() as session:
        return await session.scalar(
            select(func.count()).select_from(ExceptionRow).where(ExceptionRow.state != "RESOLVED")
        )
