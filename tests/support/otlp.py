"""A real OTLP/gRPC trace collector for tests: services export to it like they would to Jaeger."""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent import futures
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span with the service that exported it."""

    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str


class OtlpCollector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span exported to it; `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT points at."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.received = threading.Event()
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.port = 0

    def Export(self, request, context):
        with self._lock:
            self.requests.append(request)
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpCollector:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(None)

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far."""
        out = []
        with self._lock:
            requests = list(self.requests)
        for request in requests:
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    ),
                    "",
                )
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        out.append(
                            ReceivedSpan(
                                service,
                                span.name,
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                span.parent_span_id.hex(),
                            )
                        )
        return out

    def services_by_trace(self) -> dict[str, set[str]]:
        """For each trace id, the services that exported spans of it."""
        traces: dict[str, set[str]] = defaultdict(set)
        for span in self.spans():
            traces[span.trace_id].add(span.service)
        return dict(traces)
