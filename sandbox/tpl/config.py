"""Settings of the 3PL stand-in: one frozen object, every delay scaled by ``time_scale``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

API_VERSION = "2026-07"
DEFAULT_TOKEN = "sandbox-tpl-token"
DEFAULT_CHANNEL_ID = 1001


@dataclass(frozen=True)
class TplSettings:
    """How the 3PL stand-in behaves.

    Delays are in simulated seconds and multiplied by ``time_scale`` (0.001 turns seconds into
    milliseconds for tests). Rates are probabilities drawn from the seeded generator. ``faults`` are
    the faults at start, ``{"<operation>": {Fault fields}}`` (``order.create``, ``webhook.deliver``,
    ``edi.poll``...); ``/_sandbox/faults`` changes them later.
    """

    seed: int = 0
    api_version: str = API_VERSION
    tokens: frozenset[str] = frozenset({DEFAULT_TOKEN})
    channels: dict[int, str] = field(default_factory=lambda: {DEFAULT_CHANNEL_ID: "retail-mesh"})
    rate_limit: int = 150
    rate_window_s: float = 60.0
    time_scale: float = 1.0
    simulate: bool = True
    tick_s: float = 1.0
    pick_delay_s: float = 30.0
    pack_delay_s: float = 30.0
    ship_delay_s: float = 60.0
    delivery_delay_s: float = 600.0
    return_receive_delay_s: float = 300.0
    partial_shipment_rate: float = 0.1
    damaged_return_rate: float = 0.2
    webhook_timeout_s: float = 5.0
    webhook_max_attempts: int = 8
    webhook_backoff_s: float = 10.0
    edi_dir: Path | None = None
    edi_poll_s: float = 5.0
    edi_inventory_advice_s: float = 0.0
    edi_sender_id: str = "TPLSANDBOX"
    edi_receiver_id: str = "RETAILMESH"
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)

    def scaled(self, seconds: float) -> float:
        """A simulated duration in real seconds."""
        return seconds * self.time_scale
