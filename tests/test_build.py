"""Firmware builds with the bundled toolchain: cached, incremental, clear errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness.build import DBC_DIR, FIRMWARE_DIR, GENERATED, build
from harness.errors import BuildError
from harness.loader import load_elf
from harness.paths import MissingFileError


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    src = tmp_path / "fw"
    shutil.copytree(FIRMWARE_DIR, src)
    return src


@pytest.fixture
def dbc_copy(tmp_path: Path) -> Path:
    """The DBCs and LDFs."""
    dbc_dir = tmp_path / "dbc"
    shutil.copytree(DBC_DIR, dbc_dir)
    return dbc_dir


def test_builds_cortex_m4_elfs(source_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    elfs = build(["app"], src=source_copy, out=out)
    image = load_elf(elfs["app"])
    assert image.symbol("Reset_Handler").kind == "function"


def test_rebuilds_only_what_changed(source_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = build(["app", "busy"], src=source_copy, out=out)
    stamps = {n: p.stat().st_mtime_ns for n, p in first.items()}
    build(["app", "busy"], src=source_copy, out=out)
    assert {n: p.stat().st_mtime_ns for n, p in first.items()} == stamps  # nothing rebuilt
    main = source_copy / "app" / "main.c"
    main.write_text(main.read_text() + "\n/* touched */\n")
    build(["app", "busy"], src=source_copy, out=out)
    assert first["app"].stat().st_mtime_ns != stamps["app"]
    assert first["busy"].stat().st_mtime_ns == stamps["busy"]


def test_compile_error_names_target_and_line(source_copy: Path, tmp_path: Path) -> None:
    main = source_copy / "app" / "main.c"
    main.write_text(main.read_text() + "\nint broken( {\n")
    with pytest.raises(BuildError, match=r"target 'app' failed to build:(.|\n)*main\.c:\d+"):
        build(["app"], src=source_copy, out=tmp_path / "out")


def test_unknown_target() -> None:
    with pytest.raises(BuildError, match="no firmware target 'nope'; targets: app, irqtest, busy"):
        build(["nope"])


def test_missing_sources_say_what_was_expected_where(tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere"
    where = re.escape(str(nowhere))
    expected = rf"the firmware sources \(firmware_stubs/\) not found: expected {where}"
    with pytest.raises(MissingFileError, match=rf"^{expected} \(no such file or directory\)$"):
        build(["app"], src=nowhere, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_missing_source_file_names_the_target_and_the_file(
    source_copy: Path, tmp_path: Path
) -> None:
    (source_copy / "app" / "main.c").unlink()
    with pytest.raises(BuildError, match=r"firmware target 'app': source file not found: "
                       rf"expected {re.escape(str(source_copy / 'app' / 'main.c'))}$"):  # fmt: skip
        build(["app"], src=source_copy, out=tmp_path / "out")


def test_an_ldf_change_rebuilds_the_ldf_targets_only(
    source_copy: Path, dbc_copy: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    names = ["app", "elc", "elc_1m"]
    first = build(names, src=source_copy, dbc_dir=dbc_copy, out=out)
    tables = out / GENERATED / "exterior_light_lin.c"
    assert tables.is_file() and (out / GENERATED / "exterior_light_lin.h").is_file()
    assert not list(source_copy.rglob("*_lin.*")), "generated code belongs in the build dir"
    stamps = {n: p.stat().st_mtime_ns for n, p in first.items()}
    build(names, src=source_copy, dbc_dir=dbc_copy, out=out)
    assert {n: p.stat().st_mtime_ns for n, p in first.items()} == stamps  # nothing rebuilt
    ldf = dbc_copy / "exterior_light.ldf"
    ldf.write_text(
        ldf.read_text().replace("LampFaultEvent delay 10 ms", "LampFaultEvent delay 20 ms")
    )
    build(names, src=source_copy, dbc_dir=dbc_copy, out=out)
    assert first["elc"].stat().st_mtime_ns != stamps["elc"]
    assert first["elc_1m"].stat().st_mtime_ns != stamps["elc_1m"]
    assert first["app"].stat().st_mtime_ns == stamps["app"]
    assert "{LIN_FRAME_LAMP_FAULT_EVENT, 20000u}," in tables.read_text()


def test_a_missing_ldf_names_the_target_and_the_file(
    source_copy: Path, dbc_copy: Path, tmp_path: Path
) -> None:
    (dbc_copy / "exterior_light.ldf").unlink()
    expected = re.escape(str(dbc_copy / "exterior_light.ldf"))
    with pytest.raises(BuildError, match=rf"target 'elc': LDF not found: expected {expected}$"):
        build(["elc"], src=source_copy, dbc_dir=dbc_copy, out=tmp_path / "out")


def test_an_invalid_ldf_is_a_build_error_with_its_line(
    source_copy: Path, dbc_copy: Path, tmp_path: Path
) -> None:
    ldf = dbc_copy / "exterior_light.ldf"
    text = ldf.read_text().replace("LampCommand: 0x20, ELC, 2", "LampCommand: 0x20, ELC, 9")
    ldf.write_text(text)
    line = text[: text.index("LampCommand: 0x20")].count("\n") + 1
    where = re.escape(f"{ldf}:{line}:")
    with pytest.raises(BuildError, match=rf"^firmware target 'elc': cannot generate C tables: "
                       rf"{where}\d+: frame LampCommand: 9 bytes long"):  # fmt: skip
        build(["elc"], src=source_copy, dbc_dir=dbc_copy, out=tmp_path / "out")
