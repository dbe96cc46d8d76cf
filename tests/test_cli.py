"""The `harness` command line, run as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_build_lists_targets(firmware: dict[str, Path]) -> None:
    result = harness("build", "app")
    assert result.returncode == 0, result.stderr
    assert str(firmware["app"]) in result.stdout


def test_run_prints_symbols_gpio_and_speed(app_elf: Path) -> None:
    result = harness(
        "run", "--firmware", str(app_elf), "--ms", "1001", "--symbol", "ms_ticks", "--gpio"
    )
    assert result.returncode == 0, result.stderr
    assert "ms_ticks = 1000" in result.stdout
    assert "GPIOA.0" in result.stdout and "500.1" in result.stdout
    assert "virtual MHz" in result.stdout


def test_regs_check_passes_on_a_clean_tree() -> None:
    result = harness("regs", "--check")
    assert result.returncode == 0, result.stderr


def test_bench_reports_speed(app_elf: Path) -> None:
    result = harness("bench", "--firmware", str(app_elf), "--ms", "100")
    assert result.returncode == 0, result.stderr
    assert "virtual MHz" in result.stdout and "snapshot restore" in result.stdout


def test_demo_shows_the_application(firmware: dict[str, Path]) -> None:
    result = harness("demo", "--ms", "1100")
    assert result.returncode == 0, result.stderr
    assert "Heartbeat LED" in result.stdout
    assert re.search(r"^ +500\.1\d+  1$", result.stdout, re.M)
    assert re.search(r"^ +1000\.1\d+  0$", result.stdout, re.M)
    assert "ms_ticks" in result.stdout
    # The CAN part: a rest-bus by name, the controller's answers decoded with the DBC, and
    # its safe state once VehicleState stops (50 ms timeout).
    assert re.search(r"vehicle VehicleState +Speed=50\.0, BrakePedal=Pressed", result.stdout)
    assert re.search(r"ELC +LightStatus +BrakeLamp=1, .*SafeState=0", result.stdout)
    safe = re.search(r"^ +(\d+\.\d+) +ELC +LightStatus +BrakeLamp=1.*Hazard=1.*SafeState=1",
                     result.stdout, re.M)  # fmt: skip
    assert safe and 160 < float(safe.group(1)) < 172
    # The A/B part: secure boot of A, B installed, its trial boot, its confirm, and A refused
    # for its old security counter after the next power cycle.
    assert re.search(r"booted bank A as confirmed.*\n +images +A: 1\.0\.0 ok +B: - empty",
                     result.stdout)  # fmt: skip
    assert re.search(r"booted bank B as trial; records: confirmed bank A, trial bank B \(1 of 3",
                     result.stdout)  # fmt: skip
    assert "booted bank B as trial; records: confirmed bank B, stored counter 2" in result.stdout
    assert "boot: bank A 1.0.0 rejected: old security counter" in result.stdout


def test_bad_firmware_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "junk.elf"
    bad.write_text("hello")
    result = harness("run", "--firmware", str(bad), "--ms", "1")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {bad}: not an ELF file (starts with b'hell')"


def test_firmware_fault_is_reported_without_traceback(firmware: dict[str, Path]) -> None:
    # irqtest with scenario 0 idles; unknown symbol errors are clean too.
    result = harness(
        "run", "--firmware", str(firmware["irqtest"]), "--ms", "1", "--symbol", "no_such_symbol"
    )
    assert result.returncode == 2
    assert "error: " in result.stderr and "no symbol named 'no_such_symbol'" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_on_the_fpu_board_with_semihosting_exit(firmware: dict[str, Path]) -> None:
    hard_float = str(firmware["fputest"])
    refused = harness("run", "--firmware", hard_float, "--ms", "1")
    assert refused.returncode == 2
    assert "built for an FPU" in refused.stderr and "ASILB-M4F" in refused.stderr
    result = harness("run", "--board", "ASILB-M4F", "--firmware", hard_float, "--ms", "20",
                     "--symbol", "done")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "done = 1" in result.stdout
    exited = harness("run", "--firmware", str(firmware["semihost"]), "--ms", "100")
    assert exited.returncode == 3  # the firmware's own exit status
    assert "hello world" in exited.stdout and "exited with status 3" in exited.stdout


def test_regs_writes_header_and_svd_where_asked(tmp_path: Path) -> None:
    result = harness("regs", "--out", str(tmp_path / "inc"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "inc" / "asilb_m4.h").read_text().startswith("/*")
    assert "<device" in (tmp_path / "inc" / "asilb_m4.svd").read_text()


def test_flash_reprograms_the_emulated_ecu(tmp_path: Path, firmware: dict[str, Path]) -> None:
    key = tmp_path / "image.key"
    key.write_text("2b7e151628aed2a6abf7158809cf4f3c\n")
    new = tmp_path / "b.bin"
    signed = harness("image", "sign", str(firmware["elc_b"]), "--key", str(key),
                     "--load-address", "0x100200", "--version", "1.1.0", "--counter", "2",
                     "-o", str(new))  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    result = harness("flash", str(new), "--key", str(key), "--no-progress", "--classic")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^[\d,]+ bytes in \d+ blocks of 4096 to 0x00100000$", result.stdout, re.M)
    assert re.search(r"frames sent, .* ms of virtual time in", result.stdout)
    assert "the ECU booted bank B 1.1.0 as trial, and it confirmed itself" in result.stdout
    truncated = tmp_path / "cut.bin"
    truncated.write_bytes(new.read_bytes()[:1000])
    bad = harness("flash", str(truncated), "--key", str(key))
    assert bad.returncode == 2 and bad.stderr.startswith(f"error: {truncated}: the header says")


def test_diag_reads_dids_and_dtcs(firmware: dict[str, Path]) -> None:
    result = harness("diag", "--read", "F187", "F189", "--dtcs")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["F187  ELC-ASILB-M4-001", "F189  0.0.0"]
    assert "C20100  status 0x09 (testFailed, confirmedDTC)" in result.stdout
    nobody = harness("diag", "--can0", "virtual:harness-test-nobody", "--read", "F187")
    assert nobody.returncode == 2 and "error: the ECU: Did not receive response" in nobody.stderr
