"""Fixtures for the offline checks of compose.yaml, k8s/ and the NATS configs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.unit.deploy.manifests import ROOT, ServiceRow, architecture_services, render_kustomize


@pytest.fixture(scope="session")
def architecture() -> list[ServiceRow]:
    """The services of docs/architecture.md, the source of truth for names and ports."""
    rows = architecture_services()
    assert len(rows) >= 9, "the architecture table could not be read"
    return rows


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """compose.yaml, parsed (YAML anchors and merge keys resolved)."""
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def k8s() -> list[dict[str, Any]]:
    """The objects `kubectl apply -k k8s` would create."""
    return render_kustomize(ROOT / "k8s")


@pytest.fixture(scope="session")
def k8s_dev() -> list[dict[str, Any]]:
    """The objects of the dev overlay."""
    return render_kustomize(ROOT / "k8s" / "overlays" / "dev")
