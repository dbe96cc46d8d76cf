"""Where the bundled firmware sources and DBC are, and where build outputs go.

Two layouts: a source checkout (also an editable install), where `firmware_stubs/` and `dbc/`
sit at the top level beside `harness/`; and an installed wheel, where setup.py has copied
them into the package as `harness/_bundled/firmware_stubs/` and `harness/_bundled/dbc/`.
Build outputs never go into the package: `build/` in a checkout, a per-user cache otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from harness.errors import BuildError, HarnessError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent  # the checkout's root when `checkout_root()` is not None
BUNDLED_IN_PACKAGE = PACKAGE_DIR / "_bundled"  # where setup.py puts them in the wheel

Bundled = Literal["firmware_stubs", "dbc"]


class MissingFileError(HarnessError):
    """A bundled file, or a directory the harness needs, is not where it should be."""


def checkout_root() -> Path | None:
    """The source checkout the package runs from, if it does (pyproject.toml and
    firmware_stubs/ beside the package); None for an installed package."""
    if (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "firmware_stubs").is_dir():
        return PROJECT_ROOT
    return None


def bundled(name: Bundled) -> Path:
    """The bundled `firmware_stubs` (firmware sources) or `dbc` directory: at the top level of
    a source checkout, else inside the installed package. The path may not exist; see
    `require`."""
    root = checkout_root()
    return (root if root is not None else BUNDLED_IN_PACKAGE) / name


def require(path: Path, what: str) -> Path:
    """`path` if it exists, else a `MissingFileError` saying what was expected where."""
    if path.exists():
        return path
    if checkout_root() is None and path.is_relative_to(BUNDLED_IN_PACKAGE):
        hint = ("the installed package lacks its bundled files; reinstall harness from a "
                "wheel or sdist built with its setup.py")  # fmt: skip
    else:
        hint = "no such file or directory"
    raise MissingFileError(f"{what} not found: expected {path} ({hint})")


def version() -> str:
    """The installed distribution's version ("unknown" when running from a bare tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("harness")
    except PackageNotFoundError:
        return "unknown"


def build_dir() -> Path:
    """Where build outputs go: `$HARNESS_BUILD_DIR`; else `build/` in a source checkout
    (git-ignored); else a per-user cache, `$XDG_CACHE_HOME/harness/<version>` or
    `~/.cache/harness/<version>`, so two installed versions never share outputs."""
    explicit = os.environ.get("HARNESS_BUILD_DIR")
    if explicit:
        return Path(explicit)
    root = checkout_root()
    if root is not None:
        return root / "build"
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"  # XDG: absolute only
    return base / "harness" / version()


def make_dir(path: Path) -> Path:
    """Create a build output directory, or say clearly why it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BuildError(
            f"cannot create the build directory {path}: {err.strerror or err}; set "
            "HARNESS_BUILD_DIR to a writable directory"
        ) from err
    return path
