"""Where the bundled sources and DBC are, and where build outputs go, in a checkout and
installed (the installed wheel itself: tests/test_wheel_install.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness
from harness import paths
from harness.build import FIRMWARE_DIR
from harness.dbc import PROJECT_DBC
from harness.errors import BuildError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Pretend the package is installed (not in a checkout), in tmp_path/site-packages."""
    package = tmp_path / "site-packages" / "harness"
    monkeypatch.setattr(paths, "checkout_root", lambda: None)
    monkeypatch.setattr(paths, "BUNDLED_IN_PACKAGE", package / "_bundled")
    monkeypatch.delenv("HARNESS_BUILD_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return package


def test_a_checkout_uses_its_top_level_sources_and_build_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # This checkout is also how `make` installs the package: `pip install -e .`.
    assert Path(harness.__file__).parent == ROOT / "harness"
    assert paths.checkout_root() == ROOT
    assert paths.bundled("firmware_stubs") == FIRMWARE_DIR == ROOT / "firmware_stubs"
    assert paths.bundled("dbc") == PROJECT_DBC.parent == ROOT / "dbc"
    assert PROJECT_DBC.is_file()
    monkeypatch.delenv("HARNESS_BUILD_DIR", raising=False)
    assert paths.build_dir() == ROOT / "build"


def test_harness_build_dir_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_BUILD_DIR", str(tmp_path / "mine"))
    assert paths.build_dir() == tmp_path / "mine"


def test_installed_builds_go_to_the_versioned_user_cache(
    installed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    version = paths.version()
    assert version == "0.1.0"
    assert paths.build_dir() == tmp_path / "home" / ".cache" / "harness" / version
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.build_dir() == tmp_path / "xdg" / "harness" / version
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored, as XDG says
    assert paths.build_dir() == tmp_path / "home" / ".cache" / "harness" / version
    monkeypatch.setenv("HARNESS_BUILD_DIR", "")  # empty: unset
    assert paths.build_dir() == tmp_path / "home" / ".cache" / "harness" / version
    monkeypatch.setenv("HARNESS_BUILD_DIR", str(tmp_path / "mine"))
    assert paths.build_dir() == tmp_path / "mine"


def test_installed_sources_are_inside_the_package(installed: Path) -> None:
    assert paths.bundled("firmware_stubs") == installed / "_bundled" / "firmware_stubs"
    assert paths.bundled("dbc") == installed / "_bundled" / "dbc"


def test_missing_bundled_files_say_what_was_expected_where(installed: Path) -> None:
    stubs = paths.bundled("firmware_stubs")
    with pytest.raises(paths.MissingFileError) as err:
        paths.require(stubs, "the firmware sources (firmware_stubs/)")
    assert str(err.value) == (
        f"the firmware sources (firmware_stubs/) not found: expected {stubs} (the installed "
        "package lacks its bundled files; reinstall harness from a wheel or sdist built with "
        "its setup.py)"
    )


def test_a_build_dir_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    expected = r"cannot create the build directory .*a-file/x: Not a directory; set HARNESS_BUILD_"
    with pytest.raises(BuildError, match=expected):
        paths.make_dir(blocker / "x")
