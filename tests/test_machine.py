"""The Machine API a test author uses: run, inspect, change, reset, snapshot."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from harness import FirmwareLoadError, Machine, VirtualTimeout
from harness.boards import DEFAULT_BOARD


@pytest.fixture
def machine(app_elf: Path) -> Machine:
    return Machine(app_elf)


def test_reset_takes_sp_and_pc_from_the_vector_table(machine: Machine) -> None:
    assert machine.cpu.reg("sp") == 0x2004_0000
    assert machine.image.function_at(machine.cpu.pc) == "Reset_Handler"
    assert machine.nvic.vtor == 0x0001_0000
    assert machine.cycles == 0


def test_run_for_counts_virtual_time(machine: Machine) -> None:
    machine.run_for(ms=10)
    assert machine.cycles == 10 * 120_000
    assert machine.now_ns == 10_000_000
    assert machine.read_symbol("ms_ticks") == 9  # first tick 1 ms after SysTick starts


def test_run_until_returns_when_the_predicate_holds(machine: Machine) -> None:
    t = machine.run_until(lambda: machine.read_symbol("ms_ticks") == 5, timeout_ms=20)
    assert 5.0 < t < 5.2
    assert machine.read_symbol("ms_ticks") == 5


def test_run_until_times_out_in_virtual_time(machine: Machine) -> None:
    with pytest.raises(VirtualTimeout, match="3 ms of virtual time"):
        machine.run_until(lambda: False, timeout_ms=3)
    assert machine.cycles == 3 * 120_000


def test_symbols_are_typed_by_size(machine: Machine) -> None:
    machine.run_for(ms=2)
    assert isinstance(machine.read_symbol("ms_ticks"), int)
    machine.write_symbol("ms_ticks", 499)
    machine.run_for(ms=1)
    assert machine.read_symbol("ms_ticks") == 500
    assert machine.gpio("GPIOA").pin(0) == 1  # 500 reached: heartbeat toggled
    with pytest.raises(ValueError, match="does not fit ms_ticks"):
        machine.write_symbol("ms_ticks", 1 << 32)


def test_gpio_outputs_inputs_and_log(machine: Machine) -> None:
    machine.run_for(ms=1)
    port = machine.gpio("GPIOA")
    assert port.regs["DIR"] & 0b11 == 0b11
    edges = [e for e in port.events if e.pin == 1]
    assert [e.level for e in edges[:4]] == [1, 0, 1, 0]
    assert {b.cycle - a.cycle for a, b in itertools.pairwise(edges)} == {12_000}
    b = machine.gpio("GPIOB")
    b.set_input(5, 1)
    assert b.pin(5) == 1  # an input pin reads what the test drives
    assert machine.read_u32(0x4000_0404) >> 5 & 1 == 1  # and so does the firmware's IDR


def test_unknown_peripheral_is_a_clear_error(machine: Machine) -> None:
    with pytest.raises(KeyError, match="no peripheral 'CAN9'"):
        machine.peripheral("CAN9")


def test_snapshot_restore_replays_identically(machine: Machine) -> None:
    machine.run_for(ms=3)
    snap = machine.snapshot()

    def outcome() -> tuple[object, ...]:
        machine.run_for(ms=7)
        symbols = [machine.read_symbol(n) for n in ("filter_state", "tim2_preemptions")]
        return machine.cycles, symbols, list(machine.gpio("GPIOA").events)

    first = outcome()
    machine.restore(snap)
    assert machine.cycles == 3 * 120_000
    assert outcome() == first


def test_restore_undoes_memory_and_peripheral_changes(machine: Machine) -> None:
    machine.run_for(ms=2)
    snap = machine.snapshot()
    ticks = machine.read_symbol("ms_ticks")
    machine.write_symbol("ms_ticks", 1234)
    machine.gpio("GPIOB").set_input(3, 1)
    machine.restore(snap)
    assert machine.read_symbol("ms_ticks") == ticks
    assert machine.gpio("GPIOB").pin(3) == 0


def test_reset_restarts_firmware_and_keeps_time(machine: Machine) -> None:
    machine.run_for(ms=5)
    machine.reset()
    assert machine.cycles == 5 * 120_000
    assert machine.image.function_at(machine.cpu.pc) == "Reset_Handler"
    machine.run_for(ms=3)
    assert machine.read_symbol("ms_ticks") == 2  # counting again from zero


def test_clock_is_configurable(app_elf: Path) -> None:
    m = Machine(app_elf, clock_hz=48_000_000)
    m.run_for(ms=1)
    assert m.cycles == 48_000


def test_default_board_memory_map() -> None:
    b = DEFAULT_BOARD
    assert b.region("FLASH").size == 2 * 1024 * 1024
    assert b.region("SRAM").base == 0x2000_0000 and b.region("SRAM").size == 256 * 1024
    parts = [b.partition(n) for n in ("BOOTLOADER", "BANK_A", "BANK_B", "NVM")]
    assert parts[0].size == 64 * 1024
    assert parts[1].size == parts[2].size
    for a, nxt in itertools.pairwise(parts):
        assert a.base + a.size == nxt.base  # partitions tile the flash
    assert parts[-1].base + parts[-1].size == b.region("FLASH").end


def test_errors_in_peripheral_models_reach_the_caller(machine: Machine) -> None:
    def broken(_i: int, _w: int, _n: int) -> None:
        raise RuntimeError("model bug")

    machine.gpio("GPIOA").regs.on_write["TOGGLE"] = broken
    with pytest.raises(RuntimeError, match="model bug"):
        machine.run_for(ms=1)


def test_cold_and_warm_code_cache_give_identical_runs(app_elf: Path) -> None:
    # Unicorn keeps translated code across a restore; timing must not depend on it.
    m = Machine(app_elf)
    at_reset = m.snapshot()

    def outcome() -> tuple[object, ...]:
        m.run_for(ms=12)
        events = [e for p in ("GPIOA", "GPIOB") for e in m.gpio(p).events]
        return m.cycles, m.read_symbol("filter_state"), m.read_symbol("main_wakeups"), events

    cold = outcome()
    m.restore(at_reset)
    assert outcome() == cold


def test_code_at_address_zero_runs(machine: Machine) -> None:
    # The bootloader lives at 0x0; nothing may treat that address as "stop here".
    machine.write_memory(0x0, bytes.fromhex("0130") + bytes.fromhex("fde7"))  # adds r0,#1; b 0
    machine.cpu.set_reg("pc", 0x1)
    machine.run_for(us=10)
    assert machine.cpu.reg("r0") > 500
    assert machine.cpu.pc in (0x0, 0x2)


def test_vector_table_with_stack_outside_ram(app_elf: Path) -> None:
    with pytest.raises(
        FirmwareLoadError, match="initial SP must be a word-aligned address in SRAM"
    ):
        Machine(app_elf, boot_address=0x0)  # erased flash: SP 0, reset vector 0


def test_can_controllers_and_message_ram_are_on_the_board(machine: Machine) -> None:
    assert machine.read_u32(0x4000_6000) == 0x32150320  # MCAN0 CREL, through MMIO
    assert machine.read_u32(0x4000_6404) == 0x87654321  # MCAN1 ENDN
    assert machine.read_u32(0x4000_6018) & 1 == 1  # CCCR.INIT after reset
    mcan = machine.peripheral("MCAN0")
    machine.write_memory(0x4001_0010, b"\xde\xad\xbe\xef")  # message RAM is plain memory
    assert bytes(mcan.ram[0x10:0x14]) == b"\xde\xad\xbe\xef"  # type: ignore[attr-defined]


def test_peripheral_logs_keep_the_latest_entries_so_long_runs_stay_flat() -> None:
    """Also: a write to ODR itself is logged (it used to be compared with itself: no event)."""
    from harness.clock import VirtualClock
    from harness.peripherals.base import LOG_LIMIT
    from harness.peripherals.gpio import Gpio

    gpio = Gpio("GPIOA", 0x4000_0000, VirtualClock(1_000_000))
    writes = 2 * LOG_LIMIT + 10
    for i in range(writes):
        gpio.clock.cycles = i
        gpio.write(0x8, 4, i & 1)  # ODR: pin 0 toggles every write
    assert LOG_LIMIT <= len(gpio.events) <= 2 * LOG_LIMIT
    assert [e.cycle for e in gpio.events[-3:]] == [writes - 3, writes - 2, writes - 1]
    snap = gpio.snapshot()
    gpio.write(0x8, 4, 0)
    gpio.restore(snap)
    assert gpio.events[-1].cycle == writes - 1  # the snapshot held a copy, not the log
    gpio.reset()
    assert not gpio.events
