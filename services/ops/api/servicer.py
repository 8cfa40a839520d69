"""OpsService as served by ops: the business-exception worklists (V3) and order timelines (V5).

Requests arrive validated by protovalidate (libs.rpc ValidationInterceptor). Mutating RPCs are
idempotent by request_id: the first reply is stored with the change and its event in one
transaction, and a repeat returns it. The operator is the authenticated caller (S5), never a
request field. The dead-letter RPCs are inherited from the generated base and answer
UNIMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.bus import Outbox
from libs.rpc import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    current_principal,
    error_from_rpc,
)
from libs.store import Database
from retail.ops.v1 import ops_pb2, ops_service_pb2, ops_service_pb2_grpc
from retail.orders.v1 import orders_service_pb2, orders_service_pb2_grpc
from services.ops.domain.worklist import Resolution, State, Worklist, WorklistError
from services.ops.events.mapping import exception_pb
from services.ops.store.tables import RequestRow
from services.ops.worklist import BadPageToken, ExceptionFilter, UnknownException, Worklists, now

pb = ops_service_pb2
R = TypeVar("R", bound=Message)
#: The operator name recorded when the server runs without authentication (embedded default).
UNAUTHENTICATED = "unauthenticated"
#: Deadline of the GetOrder call behind GetOrderTimeline (the channel caps it by the caller's).
ORDERS_TIMEOUT_S = 10.0


def operator() -> str:
    """Who calls: the token's `operator` claim (a person acting through the console), else its
    subject (a service or tool), else `unauthenticated` when auth is off."""
    principal = current_principal.get()
    if principal is None:
        return UNAUTHENTICATED
    return str(principal.claims.get("operator") or principal.subject)


def _enum_name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix)


class OpsServiceServicer(ops_service_pb2_grpc.OpsServiceServicer):
    """`retail.ops.v1.OpsService`.

    Args:
        db: the ops database.
        worklists: the business exceptions.
        outbox: the bus's outbox (ExceptionAssigned / ExceptionResolved commit with the change).
        orders: stub of the orders service, for order timelines.
    """

    def __init__(
        self,
        db: Database,
        worklists: Worklists,
        outbox: Outbox,
        orders: orders_service_pb2_grpc.OrdersServiceStub,
    ) -> None:
        self.db = db
        self.worklists = worklists
        self.outbox = outbox
        self.orders = orders

    # -- reads ------------------------------------------------------------------------------------

    async def ListExceptions(self, request: pb.ListExceptionsRequest, context: grpc.aio.ServicerContext):
        """Exceptions matching the filters, oldest opened first, paged."""
        states = [State(_enum_name(ops_pb2.ExceptionState, s, "EXCEPTION_STATE_")) for s in request.states]
        where = ExceptionFilter(
            worklist=_worklist(request.worklist),
            reason_codes=list(request.reason_codes),
            states=states or (State.OPEN, State.ASSIGNED),
            order_id=request.order_id,
            assignee=request.assignee,
        )
        try:
            cases, token = await self.worklists.find(
                where, page_size=request.page.page_size, page_token=request.page.page_token
            )
        except BadPageToken:
            raise InvalidArgument("page.page_token", "not a token this service issued") from None
        reply = pb.ListExceptionsResponse(exceptions=[exception_pb(c) for c in cases])
        reply.page.next_page_token = token
        return reply

    async def SummarizeExceptions(
        self, request: pb.SummarizeExceptionsRequest, context: grpc.aio.ServicerContext
    ):
        """Not-resolved exceptions counted per worklist and reason code, largest group first."""
        groups = await self.worklists.summarize(_worklist(request.worklist))
        reply = pb.SummarizeExceptionsResponse()
        for group in groups:
            item = reply.groups.add(
                worklist=ops_pb2.Worklist.Value(f"WORKLIST_{group.worklist.value}"),
                reason_code=group.reason_code,
                open_count=group.open_count,
            )
            item.oldest_opened_at.FromDatetime(group.oldest_opened_at)
        return reply

    async def GetOrderTimeline(self, request: pb.GetOrderTimelineRequest, context: grpc.aio.ServicerContext):
        """The order's hops as the orders service records them, with the order's exceptions.

        Dead letters are not joined yet (the dead-letter RPCs are not built): the list is empty.
        """
        try:
            got = await self.orders.GetOrder(
                orders_service_pb2.GetOrderRequest(order_id=request.order_id, include_timeline=True),
                timeout=ORDERS_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as error:
            domain = error_from_rpc(error)
            if domain is not None:
                raise domain from None
            raise Unavailable(f"orders service: {error.code().name}: {error.details()}") from None
        cases = await self.worklists.for_order(request.order_id)
        return pb.GetOrderTimelineResponse(entries=got.timeline, exceptions=[exception_pb(c) for c in cases])

    # -- commands ---------------------------------------------------------------------------------

    async def AssignException(self, request: pb.AssignExceptionRequest, context: grpc.aio.ServicerContext):
        """Give an exception to an operator; emits ExceptionAssigned."""

        async def work(session: AsyncSession) -> pb.AssignExceptionResponse:
            case = await self._guard(
                self.worklists.assign(session, request.exception_id, request.assignee, self._emit(session))
            )
            return pb.AssignExceptionResponse(exception=exception_pb(case))

        return await self._once(request.request_id, "AssignException", pb.AssignExceptionResponse, work)

    async def ResolveException(self, request: pb.ResolveExceptionRequest, context: grpc.aio.ServicerContext):
        """Resolve an exception with a note, as the calling operator; emits ExceptionResolved."""
        resolution = Resolution(_enum_name(ops_pb2.Resolution, request.resolution, "RESOLUTION_"))
        by = operator()

        async def work(session: AsyncSession) -> pb.ResolveExceptionResponse:
            case = await self._guard(
                self.worklists.resolve(
                    session, request.exception_id, resolution, request.note, by, self._emit(session)
                )
            )
            return pb.ResolveExceptionResponse(exception=exception_pb(case))

        return await self._once(request.request_id, "ResolveException", pb.ResolveExceptionResponse, work)

    # -- helpers ----------------------------------------------------------------------------------

    def _emit(self, session: AsyncSession) -> Callable[[Message, str], Awaitable[str]]:
        async def emit(event: Message, key: str) -> str:
            return await self.outbox.add(session, event, key=key)

        return emit

    @staticmethod
    async def _guard(change: Awaitable[R]) -> R:
        try:
            return await change
        except UnknownException as error:
            raise NotFound(f"no exception {error.args[0]}", reason="UNKNOWN_EXCEPTION") from None
        except WorklistError as error:
            raise FailedPrecondition(error.message, reason=error.code) from None

    async def _once(
        self,
        request_id: str,
        rpc: str,
        response_type: type[R],
        work: Callable[[AsyncSession], Awaitable[R]],
    ) -> R:
        """Run `work` once per request_id; a repeat returns the first reply and changes nothing."""
        first = await self._stored(request_id, response_type)
        if first is not None:
            return first
        try:
            async with self.db.transaction() as session:
                stored = await session.get(RequestRow, request_id)
                if stored is not None:
                    return response_type.FromString(stored.response)
                reply = await work(session)
                session.add(
                    RequestRow(
                        request_id=request_id, rpc=rpc, response=reply.SerializeToString(), created_at=now()
                    )
                )
                await session.flush()
                return reply
        except IntegrityError:
            # The same request_id committed concurrently (another replica): its reply wins.
            first = await self._stored(request_id, response_type)
            if first is None:
                raise
            return first

    async def _stored(self, request_id: str, response_type: type[R]) -> R | None:
        async with self.db.read() as session:
            row = await session.get(RequestRow, request_id)
            return response_type.FromString(row.response) if row is not None else None


def _worklist(value: int) -> Worklist | None:
    if value == ops_pb2.WORKLIST_UNSPECIFIED:
        return None
    return Worklist(_enum_name(ops_pb2.Worklist, value, "WORKLIST_"))
