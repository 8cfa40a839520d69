"""Subjects, streams and durable consumers declared in code, and `provision` to apply them at start."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError

KIB = 1024
DAY = 24 * 3600.0

# JetStream API error code for "stream name already in use with a different configuration".
_STREAM_NAME_IN_USE = 10058


def subject_for(message_or_descriptor: Message | Descriptor | type[Message]) -> str:
    """The NATS subject of an event: its full proto name, never a Python class name.

    Args:
        message_or_descriptor: an event instance, its class or its descriptor.

    Returns:
        For example `retail.orders.v1.OrderAccepted`.
    """
    if isinstance(message_or_descriptor, Descriptor):
        return message_or_descriptor.full_name
    return message_or_descriptor.DESCRIPTOR.full_name


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether `subject` is matched by a NATS subject `pattern` with `*` and `>` wildcards."""
    p_tokens, s_tokens = pattern.split("."), subject.split(".")
    for i, token in enumerate(p_tokens):
        if token == ">":
            return len(s_tokens) > i
        if i >= len(s_tokens) or (token != "*" and token != s_tokens[i]):
            return False
    return len(p_tokens) == len(s_tokens)


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream as the mesh wants it (reference/reliability.md §A2).

    Defaults are the order-stream settings for every stream: with `discard: new` a full stream
    refuses the publish, the outbox keeps the row and retries, and nothing is silently deleted
    (`discard: old` would drop unconsumed events). See docs/decisions/0005-bus-streams-discard-new.md.

    Args:
        name: stream name (`ORDERS`).
        subjects: captured subjects (`retail.orders.v1.>`).
        replicas: 1 on the embedded node, 3 in production.
        max_age: seconds a message is kept (7 days; the outbox keeps its own replay horizon).
        duplicate_window: seconds the server remembers `Nats-Msg-Id`s (2 minutes).
        max_msg_size: largest accepted message in bytes (256 KiB).
        max_bytes: stream size cap in bytes, -1 for none (the file store's limit applies).
        discard_new: refuse publishes when full instead of deleting the oldest messages.
        deny_delete: forbid deleting single messages through the API.
        deny_purge: forbid purging the stream through the API.
    """

    name: str
    subjects: tuple[str, ...]
    replicas: int = 1
    max_age: float = 7 * DAY
    duplicate_window: float = 120.0
    max_msg_size: int = 256 * KIB
    max_bytes: int = -1
    discard_new: bool = True
    deny_delete: bool = True
    deny_purge: bool = True

    def config(self) -> api.StreamConfig:
        """The nats-py stream configuration for this spec."""
        return api.StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            num_replicas=self.replicas,
            max_age=self.max_age,
            duplicate_window=self.duplicate_window,
            max_msg_size=self.max_msg_size,
            max_bytes=self.max_bytes,
            discard=api.DiscardPolicy.NEW if self.discard_new else api.DiscardPolicy.OLD,
            deny_delete=self.deny_delete,
            deny_purge=self.deny_purge,
        )


def context_streams(replicas: int = 1) -> tuple[StreamSpec, ...]:
    """One stream per context, `retail.<context>.v1.>` each: the five domains, ops and integration.

    Args:
        replicas: 1 for the embedded single node, 3 for the production cluster.
    """
    contexts = ("orders", "inventory", "shipments", "returns", "catalog", "ops", "integration")
    return tuple(
        StreamSpec(name=ctx.upper(), subjects=(f"retail.{ctx}.v1.>",), replicas=replicas) for ctx in contexts
    )


#: The mesh's streams on the embedded node; services use `context_streams(3)` in production.
STREAMS: tuple[StreamSpec, ...] = context_streams(1)
ORDERS, INVENTORY, SHIPMENTS, RETURNS, CATALOG, OPS, INTEGRATION = STREAMS


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer with explicit acks, bounded redelivery and back-off.

    JetStream uses a consumer's `backoff` list as the ack wait of each delivery (the server
    overwrites `ack_wait` with `backoff[0]`), so a short first back-off would redeliver a message
    whose handler is merely slow. `server_backoff()` therefore never goes below `ack_wait`; the
    shorter `backoff` delays are what the consumer asks for when it naks a failed attempt.
    See docs/decisions/0006-bus-consumer-backoff.md.

    Args:
        durable: consumer name, also the inbox key's consumer part (`erp-adapter.orders`).
        stream: the stream it reads.
        filter_subjects: subjects it receives (full proto names or wildcards).
        ack_wait: seconds a delivery may stay unacknowledged (about 3x the handler's p99).
        max_deliver: deliveries before a failing message is dead-lettered.
        backoff: delay before delivery n+1 after failed delivery n; the last entry repeats.
        max_ack_pending: deliveries in flight across all replicas of the consumer.
    """

    durable: str
    stream: str
    filter_subjects: tuple[str, ...]
    ack_wait: float = 30.0
    max_deliver: int = 8
    backoff: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 300.0, 600.0, 900.0)
    max_ack_pending: int = 256

    def retry_delay(self, delivery: int) -> float:
        """Seconds to wait before redelivering after failed delivery number `delivery` (1-based)."""
        if not self.backoff:
            return 0.0
        return self.backoff[min(max(delivery, 1), len(self.backoff)) - 1]

    def server_backoff(self) -> list[float]:
        """The redelivery schedule the server applies when a delivery's ack never comes."""
        # The server requires max_deliver > len(backoff); one entry per redelivery is enough.
        entries = [max(self.ack_wait, b) for b in self.backoff][: max(self.max_deliver - 1, 1)]
        return entries or [self.ack_wait]

    def config(self) -> api.ConsumerConfig:
        """The nats-py consumer configuration for this spec."""
        return api.ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
            backoff=self.server_backoff(),
            max_ack_pending=self.max_ack_pending,
            filter_subjects=list(self.filter_subjects),
        )


def stream_for_subject(subject: str, streams: Iterable[StreamSpec]) -> StreamSpec:
    """The stream whose subjects capture `subject` (a concrete subject or a consumer filter).

    Raises:
        LookupError: no declared stream captures it.
    """
    for stream in streams:
        if any(subject_matches(pattern, subject) or pattern == subject for pattern in stream.subjects):
            return stream
    raise LookupError(f"no declared stream captures {subject!r}")


@dataclass
class Provisioned:
    """What `provision` did, for start-up logs."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


async def provision(
    js: JetStreamContext, streams: Sequence[StreamSpec], consumers: Sequence[ConsumerSpec] = ()
) -> Provisioned:
    """Create or update `streams` and then `consumers`; safe to call at every start of every replica.

    Args:
        js: a JetStream context.
        streams: the streams to ensure.
        consumers: the durable consumers to ensure (their streams must be in `streams` or exist).

    Returns:
        The names created and updated.
    """
    done = Provisioned()
    for spec in streams:
        config = spec.config()
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            try:
                await js.add_stream(config)
                done.created.append(spec.name)
                continue
            except BadRequestError as error:
                # Another replica created it a moment ago with a different config: update below.
                if error.err_code != _STREAM_NAME_IN_USE:
                    raise
        # Updating to the same config is a no-op; storage type and name cannot change.
        await js.update_stream(config)
        done.updated.append(spec.name)
    for consumer in consumers:
        # CONSUMER.CREATE without an action creates or updates the durable consumer.
        await js.add_consumer(consumer.stream, consumer.config())
        done.updated.append(f"{consumer.stream}/{consumer.durable}")
    return done
