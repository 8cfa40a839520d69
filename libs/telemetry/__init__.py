"""Tracing, metrics, JSON logs, correlation ids and redaction, set up once per process."""

from libs.telemetry.configure import Telemetry, configure_telemetry, current_telemetry
from libs.telemetry.correlation import (
    GRPC_CORRELATION_KEY,
    NATS_CORRELATION_HEADER,
    accept_correlation_id,
    correlation_id,
    ensure_correlation_id,
    new_correlation_id,
)
from libs.telemetry.flow import capture_flow, resume_flow
from libs.telemetry.log import JsonFormatter, RedactionFilter, configure_logging
from libs.telemetry.metrics import (
    HANDLER_OUTCOME_VALUES,
    HANDLER_OUTCOMES,
    HANDLER_SECONDS,
    RPC_CLIENT_HANDLING_SECONDS,
    RPC_SERVER_HANDLING_SECONDS,
    MetricsServer,
    record_outcome,
    start_metrics_server,
)
from libs.telemetry.redaction import mask_email, mask_phone, redact, redact_text, set_redaction_key
from libs.telemetry.tracing import build_tracer_provider, extract_trace_context, inject_trace_context

__all__ = [
    "GRPC_CORRELATION_KEY",
    "HANDLER_OUTCOMES",
    "HANDLER_OUTCOME_VALUES",
    "HANDLER_SECONDS",
    "NATS_CORRELATION_HEADER",
    "RPC_CLIENT_HANDLING_SECONDS",
    "RPC_SERVER_HANDLING_SECONDS",
    "JsonFormatter",
    "MetricsServer",
    "RedactionFilter",
    "Telemetry",
    "accept_correlation_id",
    "build_tracer_provider",
    "capture_flow",
    "configure_logging",
    "configure_telemetry",
    "correlation_id",
    "current_telemetry",
    "ensure_correlation_id",
    "extract_trace_context",
    "inject_trace_context",
    "mask_email",
    "mask_phone",
    "new_correlation_id",
    "record_outcome",
    "redact",
    "redact_text",
    "resume_flow",
    "set_redaction_key",
    "start_metrics_server",
]
