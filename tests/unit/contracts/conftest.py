"""Fixtures for contract tests: every generated retail.*.v1 module and the descriptors it holds."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest
from google.protobuf.descriptor import Descriptor, FileDescriptor

import retail


def _generated_modules() -> list[ModuleType]:
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(retail.__path__, "retail.")
        if info.name.endswith("_pb2")
    ]


@pytest.fixture(scope="session")
def proto_files() -> list[FileDescriptor]:
    """File descriptors of every retail proto, imported from gen/."""
    return [module.DESCRIPTOR for module in _generated_modules()]


@pytest.fixture(scope="session")
def messages(proto_files: list[FileDescriptor]) -> list[Descriptor]:
    """Every top-level message of every retail proto."""
    return [m for f in proto_files for m in f.message_types_by_name.values()]


@pytest.fixture(scope="session")
def events(proto_files: list[FileDescriptor]) -> list[Descriptor]:
    """Every event: the top-level messages of each package's events.proto."""
    return [
        m for f in proto_files if f.name.endswith("/events.proto") for m in f.message_types_by_name.values()
    ]
