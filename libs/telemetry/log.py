"""JSON log lines, one per record, with service, correlation and trace ids, redacted on the way out."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from opentelemetry import trace

from libs.telemetry.correlation import correlation_id
from libs.telemetry.redaction import redact, redact_text

# Attributes every LogRecord has; anything else on a record came from `extra=` and is emitted as a field.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_HANDLER_MARK = "_retail_mesh_handler"


class RedactionFilter(logging.Filter):
    """Masks personal data and secrets in a record's message, extra fields and exception text.

    It rewrites the record in place (message formatted once, args dropped), so every handler after
    it, JSON or not, sees only the redacted record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact `record` and keep it."""
        record.msg = redact_text(record.getMessage())
        record.args = ()
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, redact({key: value})[key])
        # Exception messages often quote the payload that failed. Formatted again even when another
        # handler already cached an unredacted exc_text on the record.
        if record.exc_info:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line.

    Keys: `ts` (UTC, ISO 8601), `level`, `logger`, `msg`, `service`, `correlation_id`, `trace_id`,
    `span_id` (null when absent), then any `extra=` fields, then `exc` when an exception is attached.
    """

    def __init__(self, service: str) -> None:
        """Create a formatter stamping `service` on every line."""
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line for `record`."""
        span_context = trace.get_current_span().get_span_context()
        traced = span_context.is_valid
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self._service,
            "correlation_id": correlation_id.get(),
            "trace_id": trace.format_trace_id(span_context.trace_id) if traced else None,
            "span_id": trace.format_span_id(span_context.span_id) if traced else None,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in line:
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


#: Libraries that log one INFO line per outgoing HTTP request.
_PER_REQUEST_LOGGERS = ("httpx", "httpcore")


def configure_logging(service: str, level: str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record of the process as redacted JSON lines to `stream`.

    Calling it again replaces the handler it installed before (tests reconfigure; services call once).

    Args:
        service: Service name stamped on each line.
        level: Root log level name.
        stream: Where lines go; standard error by default.

    Returns:
        The installed handler.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter(service))
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO: a line per ERP, 3PL or Shopify call, a formatting and
    # redaction cost per call under load, and no news (the hop log records each external call with
    # its outcome). Their warnings still come through; LOG_LEVEL=DEBUG shows every request again.
    quiet = logging.DEBUG if logging.getLevelName(level) == logging.DEBUG else logging.WARNING
    for noisy in _PER_REQUEST_LOGGERS:
        logging.getLogger(noisy).setLevel(quiet)
    return handler
