"""Settings of the Business Central stand-in (environment prefix ``BC_SANDBOX_``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BusinessCentralSettings(BaseSettings):
    """One frozen settings object; every value has a demo-friendly default."""

    model_config = SettingsConfigDict(env_prefix="BC_SANDBOX_", frozen=True, extra="forbid")

    seed: int = Field(0, description="seed of the demo data, the ids of new records and the fault dice")
    client_id: str = Field("retail-mesh", description="the one OAuth2 client the token endpoint accepts")
    client_secret: str = Field("sandbox-secret", description="its secret")
    token_ttl_s: int = Field(3599, ge=1, description="lifetime of an access token (expires_in)")
    rate_limit: int = Field(6000, ge=1, description="requests per window per client (BC: 6,000)")
    rate_window_s: float = Field(300.0, gt=0, description="the sliding window (BC: 5 minutes)")
    max_concurrent: int = Field(100, ge=1, description="simultaneous requests per client (BC: 100)")
    generic_error_codes: bool = Field(
        False,
        description="answer business errors with BC's generic Application_DialogException code, "
        "so only the message tells them apart (as real BC does for most AL errors)",
    )
    faults: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description='faults at start: {"<operation>": {Fault fields}}'
    )
