"""ARM semihosting: console output and exit, served deterministically."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import FirmwareFault, Machine


def test_console_output_and_exit_status(firmware: dict[str, Path]) -> None:
    m = Machine(firmware["semihost"])
    assert m.run_to_exit(timeout_ms=100) == 3
    assert m.semihost_output == "hello world\n"
    # The loop of 1.2M iterations takes several virtual centiseconds before SYS_CLOCK.
    assert m.read_symbol("clock_cs") == m.cycles * 100 // m.clock.hz
    assert int(m.read_symbol("clock_cs")) >= 3
    # Halted after the exit: time passes, nothing runs.
    before = m.cycles
    m.run_for(ms=1)
    assert m.cycles > before and m.exit_code == 3


def test_exit_survives_snapshot_restore(firmware: dict[str, Path]) -> None:
    m = Machine(firmware["semihost"])
    start = m.snapshot()
    m.run_to_exit(timeout_ms=100)
    m.restore(start)
    assert m.exit_code is None and m.semihost_output == ""
    assert m.run_to_exit(timeout_ms=100) == 3


def test_unsupported_call_is_a_clear_fault(firmware: dict[str, Path]) -> None:
    m = Machine(firmware["semihost"])
    m.write_symbol("scenario", 1)
    with pytest.raises(FirmwareFault, match=r"semihosting call not supported: SYS_OPEN \(0x01\)"):
        m.run_to_exit(timeout_ms=100)
