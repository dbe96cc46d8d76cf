"""Benchmarks share the tests' firmware fixtures (built once, cached)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.build import build


@pytest.fixture(scope="session")
def firmware() -> dict[str, Path]:
    return build()
