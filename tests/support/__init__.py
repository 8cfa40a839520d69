"""Test-only helpers: real servers (PostgreSQL, NATS) started on free ports and cleaned up."""

import pytest

# Scenarios shared by e2e modules assert in plain `assert`s: let pytest explain their failures.
pytest.register_assert_rewrite("tests.support.scenarios", "tests.support.systems")
