"""Dockerfile: one non-root image that runs any module with `python -m`."""

from __future__ import annotations

import json
import re

from tests.unit.deploy.manifests import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.startswith(name + " ")]


def test_the_image_is_python_3_11_slim_pinned_not_latest():
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)

    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base


def test_the_project_is_installed_with_pip_from_pyproject():
    assert any(re.search(r"pip install \.(\s|$)", run) for run in _instructions("RUN"))


def test_the_container_runs_as_a_numeric_non_root_user():
    users = _instructions("USER")

    assert users, "no USER instruction: the image would run as root"
    assert users[-1].split(":")[0] not in ("0", "root") and users[-1].split(":")[0].isdigit()


def test_the_entrypoint_runs_a_module_so_the_command_names_the_service():
    (entrypoint,) = _instructions("ENTRYPOINT")

    assert json.loads(entrypoint) == ["python", "-m"]


def test_the_build_context_leaves_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()

    assert {".venv", ".mesh", ".git"} <= set(ignored)
