"""Where build outputs go: never into the source tree's committed files."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def build_dir() -> Path:
    """`$HARNESS_BUILD_DIR`, else `build/` beside the package (git-ignored)."""
    return Path(os.environ.get("HARNESS_BUILD_DIR", PROJECT_ROOT / "build"))
