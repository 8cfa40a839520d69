"""libs.bus.pull against a real nats-server: messages handed over as they arrive, credit accounting."""

from __future__ import annotations

import asyncio

from nats.aio.msg import Msg
from nats.js import api

from libs.bus.pull import GRACE_S, PullRequests
from tests.integration.bus.helpers import wait_until

STREAM, DURABLE = "PULLTEST", "pull-worker"


async def _consumer(nc) -> None:
    js = nc.jetstream()
    await js.add_stream(name=STREAM, subjects=["pulltest.>"])
    await js.add_consumer(
        STREAM, api.ConsumerConfig(durable_name=DURABLE, ack_policy=api.AckPolicy.EXPLICIT, ack_wait=30)
    )


async def _started(nc, received: Received, expires: float) -> PullRequests:
    pull = PullRequests(
        nc,
        stream=STREAM,
        durable=DURABLE,
        on_message=received.message,
        on_credit=received.credit,
        expires=expires,
    )
    await pull.start()
    return pull


class Received:
    def __init__(self) -> None:
        self.messages: list[Msg] = []
        self.credit_back = 0

    def message(self, msg: Msg) -> None:
        self.messages.append(msg)

    def credit(self) -> None:
        self.credit_back += 1

    async def count(self, n: int) -> bool:
        return len(self.messages) >= n


async def test_a_message_is_handed_over_at_once_even_when_an_older_request_answers_it(nc):
    """The case nats-py's fetch stalls on (nats.py#933/#986): two requests out, the server answers
    the older one. Each message still arrives at once, long before either request expires."""
    await _consumer(nc)
    received = Received()
    pull = await _started(nc, received, expires=30.0)
    try:
        await pull.request(1)  # left from an earlier round, say
        await pull.request(4)
        js = nc.jetstream()
        await js.publish("pulltest.a", b"first")
        await wait_until(lambda: received.count(1), within=3, what="the first message")
        await js.publish("pulltest.a", b"second")
        await wait_until(lambda: received.count(2), within=3, what="the second message")
        assert [m.data for m in received.messages] == [b"first", b"second"]
        assert pull.outstanding == 3
        for msg in received.messages:
            await msg.ack()
    finally:
        await pull.stop()


async def test_the_unused_part_of_an_expired_request_comes_back_as_credit(nc):
    await _consumer(nc)
    received = Received()
    pull = await _started(nc, received, expires=0.3)
    try:
        js = nc.jetstream()
        await js.publish("pulltest.a", b"one")
        await js.publish("pulltest.a", b"two")
        await pull.request(5)
        await wait_until(lambda: received.count(2), within=3, what="both messages")
        await wait_until(lambda: asyncio.sleep(0, received.credit_back), within=3, what="the request's end")
        assert pull.outstanding == 0
        assert pull.expiry_due_in() is None
        assert pull.refusals == 0
    finally:
        await pull.stop()


async def test_credit_of_a_request_whose_end_never_came_is_taken_back_after_its_expiry(nc):
    """A request lost with its connection never sends a 408; its credit must not stay out forever."""
    await _consumer(nc)
    pull = await _started(nc, Received(), expires=0.2)
    await pull.stop()  # nobody listens: the server's 408 is never read
    await pull.request(3)
    pull.take_back_expired()
    assert pull.outstanding == 3  # not yet: it may still be answered
    due = pull.expiry_due_in()
    assert due is not None and 0 < due <= 0.2 + GRACE_S

    async def taken_back() -> bool:
        pull.take_back_expired()
        return pull.outstanding == 0

    await wait_until(taken_back, within=due + 3, what="the credit taken back")


async def test_a_refusal_takes_all_credit_back_and_backs_off(nc):
    await _consumer(nc)
    received = Received()
    pull = await _started(nc, received, expires=30.0)
    try:
        await pull.request(4)
        js = nc.jetstream()

        async def waiting() -> bool:
            return (await js.consumer_info(STREAM, DURABLE)).num_waiting == 1

        await wait_until(waiting, within=3, what="the request waiting on the server")
        await js.delete_consumer(STREAM, DURABLE)  # answered 409 Consumer Deleted
        await wait_until(lambda: asyncio.sleep(0, pull.refusals), within=3, what="the refusal")
        assert pull.outstanding == 0
        assert received.credit_back == 1
        assert pull.refused_until > 0
    finally:
        await pull.stop()
