"""EventBus: the one object a service's app.py enters to get NATS, streams, the outbox relay and consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from libs.bus.consumer import Consumer, Subscription
from libs.bus.deadletter import DeadLetters
from libs.bus.hoplog import HopLog
from libs.bus.inbox import Inbox
from libs.bus.outbox import Outbox, OutboxRelay
from libs.bus.streams import STREAMS, StreamSpec, context_streams, provision, stream_for_subject
from libs.config import ServiceSettings
from libs.store import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    """How long the bus keeps its rows; purged hourly by the EventBus.

    The inbox must outlive every producer's outbox horizon, or a republish after a JetStream
    loss would be applied twice.
    """

    outbox: timedelta = timedelta(days=7)
    inbox: timedelta = timedelta(days=14)
    hop_log: timedelta = timedelta(days=30)
    interval: float = 3600.0


class EventBus:
    """NATS connection, provisioning, outbox relay and consumers of one service, as one unit.

    ```python
    bus = await stack.enter_async_context(
        EventBus(db, settings.nats_url, name="orders", subscriptions=[...])
    )
    async with db.transaction() as session:
        ...  # state change
        await bus.outbox.add(session, event, key=order_id)
    ```

    Args:
        db: the service database (migrated with `libs.bus.MIGRATIONS`).
        nats_url: one URL or a comma-separated list.
        name: the service name: NATS connection name and `meta.producer`.
        streams: streams to provision (the five context streams by default).
        subscriptions: consumers to provision and run.
        provision_streams: which of `streams` to create or update at start: True for all, False
            for none (an operator provisions them), or a collection of stream names (the ones this
            service owns, when its NATS user may change only those); consumers are always
            provisioned.
        relay: run the outbox relay in this process.
        relay_batch: rows per relay batch.
        poll_interval: relay poll fallback in seconds.
        retention: purge horizons, or None to never purge from this process.
        connect_options: extra `nats.connect` keyword arguments (TLS, credentials).
        relay_options: extra OutboxRelay keyword arguments (lease, publish_timeout, max_backoff).
    """

    def __init__(
        self,
        db: Database,
        nats_url: str,
        *,
        name: str | None = None,
        streams: Sequence[StreamSpec] = STREAMS,
        subscriptions: Sequence[Subscription] = (),
        provision_streams: bool | Collection[str] = True,
        relay: bool = True,
        relay_batch: int = 256,
        poll_interval: float = 1.0,
        retention: Retention | None = Retention(),
        connect_options: dict[str, Any] | None = None,
        relay_options: dict[str, Any] | None = None,
    ) -> None:
        self.db = db
        self.nats_url = nats_url
        self.name = name
        self.streams = tuple(streams)
        self.subscriptions = tuple(subscriptions)
        self.provision_streams = provision_streams
        self.run_relay = relay
        self.relay_batch = relay_batch
        self.poll_interval = poll_interval
        self.retention = retention
        self.connect_options = connect_options or {}
        self.relay_options = relay_options or {}
        self.outbox = Outbox(producer=name)
        self.inbox = Inbox(db)
        self.hops = HopLog(db)
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.relay: OutboxRelay | None = None
        self.dead_letters = DeadLetters(db)
        self.consumers: list[Consumer] = []
        self._maintenance: asyncio.Task[None] | None = None

    async def start(self) -> EventBus:
        """Connect, provision streams and consumers, start the relay and the consumers."""
        options: dict[str, Any] = {
            "servers": [url.strip() for url in self.nats_url.split(",")],
            "name": self.name,
            # Reconnect forever: NATS restarts must not take the service down; the outbox keeps
            # events meanwhile and the fetch loops resume.
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "connect_timeout": 5,
            "reconnected_cb": self._reconnected,
            "disconnected_cb": self._disconnected,
            "error_cb": self._error,
            **self.connect_options,
        }
        self.nc = await nats.connect(**options)
        self.js = self.nc.jetstream()
        self.dead_letters.js = self.js
        specs = [
            sub.spec(sub.stream or stream_for_subject(sub.subjects[0], self.streams).name)
            for sub in self.subscriptions
        ]
        await provision(self.js, self._streams_to_provision(), specs)
        if self.run_relay:
            self.relay = OutboxRelay(
                self.db,
                self.js,
                outbox=self.outbox,
                batch=self.relay_batch,
                poll_interval=self.poll_interval,
                **self.relay_options,
            )
            self.relay.start()
        for sub, spec in zip(self.subscriptions, specs, strict=True):
            consumer = Consumer(self.db, self.nc, sub, stream=spec.stream, outbox=self.outbox)
            await consumer.start()
            self.consumers.append(consumer)
        if self.retention is not None:
            self._maintenance = asyncio.create_task(self._purge_loop(self.retention), name="bus-retention")
        return self

    def _streams_to_provision(self) -> tuple[StreamSpec, ...]:
        if self.provision_streams is True:
            return self.streams
        if self.provision_streams is False:
            return ()
        return tuple(s for s in self.streams if s.name in self.provision_streams)

    @classmethod
    def for_service(
        cls,
        db: Database,
        settings: ServiceSettings,
        *,
        owns: Collection[str] = (),
        subscriptions: Sequence[Subscription] = (),
        **kwargs: Any,
    ) -> EventBus:
        """The bus of a service, configured from its settings.

        Args:
            db: the service database.
            settings: NATS URL, stream replicas, provisioning policy and service name.
            owns: names of the streams this service owns (`("ORDERS",)`), provisioned under the
                `own` policy.
            subscriptions: the service's consumers.
            **kwargs: further EventBus arguments.
        """
        policy = {"all": True, "none": False, "own": tuple(owns)}[settings.nats_provision]
        return cls(
            db,
            settings.nats_url,
            name=settings.service_name,
            streams=context_streams(settings.nats_stream_replicas),
            subscriptions=subscriptions,
            provision_streams=policy,
            **kwargs,
        )

    async def close(self, grace: float = 30.0) -> None:
        """Stop fetching, finish in-flight handlers, stop the relay, drain the connection."""
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
            self._maintenance = None
        await asyncio.gather(*(consumer.stop(grace) for consumer in self.consumers))
        self.consumers.clear()
        if self.relay is not None:
            await self.relay.stop()
            self.relay = None
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception as error:  # already closed by a failed reconnect, or timed out
                log.warning("NATS drain failed: %s", error)
                try:
                    await self.nc.close()
                except Exception as failure:  # nats-py flushes its buffer into a transport already gone
                    log.warning("NATS close failed: %s", failure)
        self.nc = self.js = None

    async def __aenter__(self) -> EventBus:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _purge_loop(self, retention: Retention) -> None:
        while True:
            try:
                if self.relay is not None:
                    await self.relay.purge(retention.outbox)
                await self.inbox.purge(retention.inbox)
                await self.hops.purge(retention.hop_log)
            except Exception:
                log.exception("bus retention purge failed")
            await asyncio.sleep(retention.interval)

    async def _reconnected(self) -> None:
        log.info("NATS reconnected to %s", self.nc.connected_url if self.nc else "?")
        if self.relay is not None:
            self.relay.notify()  # publish what piled up in the outbox meanwhile

    async def _disconnected(self) -> None:
        log.warning("NATS disconnected")

    async def _error(self, error: Exception) -> None:
        log.warning("NATS error: %s", error)
