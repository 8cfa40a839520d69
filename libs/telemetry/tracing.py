"""OpenTelemetry tracing: the tracer provider and W3C trace context in message headers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

#: The propagator every hop uses: W3C `traceparent`/`tracestate`, plus W3C baggage.
W3C_PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def build_tracer_provider(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    span_exporter: SpanExporter | None = None,
) -> TracerProvider:
    """Build a tracer provider for one process; does not install it.

    Args:
        service_name: Value of the `service.name` resource attribute (the service in Jaeger).
        otlp_endpoint: OTLP gRPC endpoint (`http://jaeger:4317`); spans are batched and exported
            there only when given, so a laptop run without Jaeger pays nothing.
        span_exporter: Extra exporter fed synchronously, span by span (tests pass an in-memory one).

    Returns:
        The provider.
    """
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if otlp_endpoint:
        # Imported only when used: the exporter pulls in the OTLP protos and a gRPC channel.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider


class _CaseInsensitiveGetter(Getter[Mapping[str, str]]):
    """Reads headers whatever their case: HTTP-style hops may capitalize `Traceparent`."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        wanted = key.lower()
        for name, value in carrier.items():
            if name.lower() == wanted:
                return [value]
        return None

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier.keys())


_GETTER = _CaseInsensitiveGetter()


def inject_trace_context(
    headers: MutableMapping[str, str] | None = None, context: otel_context.Context | None = None
) -> MutableMapping[str, str]:
    """Write the current (or given) trace context into `headers` as W3C `traceparent`/`tracestate`.

    Args:
        headers: Headers to add to, e.g. the NATS headers of an outgoing message; a new dict if None.
        context: Context to propagate; the current one by default.

    Returns:
        The same headers, for chaining.
    """
    carrier: MutableMapping[str, str] = {} if headers is None else headers
    propagate.inject(carrier, context=context)
    return carrier


def extract_trace_context(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> otel_context.Context:
    """Return the context carried by incoming headers, to parent the consumer's span on the producer's.

    Args:
        headers: Incoming headers (a mapping or key/value pairs); None gives an empty context.

    Returns:
        A context to pass as `context=` to `tracer.start_as_current_span`, or to `attach`.
    """
    carrier = dict(headers or {})
    return propagate.extract(carrier, getter=_GETTER)
