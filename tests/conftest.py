"""Shared fixtures: firmware is built once per session (cached by input hash)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.build import build

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def firmware() -> dict[str, Path]:
    return build()


@pytest.fixture(scope="session")
def app_elf(firmware: dict[str, Path]) -> Path:
    return firmware["app"]
