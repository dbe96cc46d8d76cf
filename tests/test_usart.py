"""The USART as a plain 8N1 UART: byte timing, TXE/TC, RX with RXNE and overrun, the
firmware's log and `harness run --uart`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import Machine
from harness.errors import SimulationError
from harness.peripherals.usart import USART_BLOCK, Usart

SR, DR, BRR, CR1 = (USART_BLOCK.register(n) for n in ("SR", "DR", "BRR", "CR1"))
TXE, TC, RXNE, ORE, FE = (SR.field(n).mask for n in ("TXE", "TC", "RXNE", "ORE", "FE"))
UE, TE, RE, TXEIE, TCIE, RXNEIE = (
    CR1.field(n).mask for n in ("UE", "TE", "RE", "TXEIE", "TCIE", "RXNEIE")
)
USART2_IRQ = 13


@pytest.fixture
def machine(firmware: dict[str, Path]) -> Machine:
    return Machine(firmware["uartlog"])  # the firmware uses USART1; the tests drive USART2


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli.main", *args],
                          capture_output=True, text=True, check=False)  # fmt: skip


def idle(m: Machine) -> None:
    """Run to 1.5 ms: the firmware has sent "boot" and sleeps until its next 1 ms tick, so
    `run_for(cycles=...)` lands exactly (a running core stops at block boundaries)."""
    m.run_for(ms=1.5)


def write(u: Usart, reg: str, value: int) -> None:
    u.write(USART_BLOCK.register(reg).offset, 4, value)


def read(u: Usart, reg: str) -> int:
    return u.read(USART_BLOCK.register(reg).offset, 4)


def setup(u: Usart, baud: int, cr1: int) -> None:
    write(u, "BRR", round(u.clock_hz / baud))
    write(u, "CR1", cr1)


def line(m: Machine) -> int:
    return m.nvic.lines >> USART2_IRQ & 1


def test_the_board_has_two_usarts(machine: Machine) -> None:
    u1, u2 = machine.uart("USART1"), machine.uart("USART2")
    assert (u1.base, u1.clock_hz) == (0x4000_3800, 60_000_000)
    assert (u2.base, u2.clock_hz) == (0x4000_3C00, 30_000_000)
    assert read(u2, "SR") == TXE | TC  # reset value, as on STM32
    with pytest.raises(TypeError, match="GPIOA is not a USART"):
        machine.uart("GPIOA")


def test_a_byte_takes_ten_bit_times(machine: Machine) -> None:
    u = machine.uart("USART1")
    machine.run_for(ms=1)  # the firmware has set 115200 baud and sent "boot\n" back to back
    assert read(u, "BRR") == 521  # 60 MHz / 115200, rounded: 115,163 baud
    frame = 10 * 521 * machine.clock.hz // u.clock_hz  # 10,420 core cycles
    assert round(frame / machine.clock.hz * 1e6, 1) == 86.8  # µs
    assert u.sent == b"boot\n" and len(u.tx_frames) == 5
    for a, b in zip(u.tx_frames, u.tx_frames[1:], strict=False):
        assert b.cycle - a.cycle == frame  # back to back, exactly one frame apart
    # From the DR write to the end of the stop bit, at the cycle the write happened.
    u2 = machine.uart("USART2")
    setup(u2, 115_200, UE | TE)
    start = machine.cycles
    write(u2, "DR", ord("A"))
    machine.run_for(us=200)
    assert [(f.cycle - start, f.byte) for f in u2.tx_frames] == [(10 * 260 * 4, ord("A"))]


def test_back_to_back_frames_do_not_drift_at_fractional_cycles(firmware: dict[str, Path]) -> None:
    m = Machine(firmware["uartlog"], clock_hz=100_000_000)
    u = m.uart("USART2")
    write(u, "BRR", 260)  # a frame is 10 * 260 * 100 / 30 = 8666.67 core cycles
    write(u, "CR1", UE | TE)
    start = m.cycles
    for byte in b"xyz":
        while not read(u, "SR") & TXE:
            m.run_for(cycles=1)
        write(u, "DR", byte)
    m.run_for(us=300)
    assert [f.cycle - start for f in u.tx_frames] == [8667, 17334, 26000]  # ceil(k * 8666.67)
    assert u.text == "xyz"


def test_txe_and_tc_sequence_and_interrupts(machine: Machine) -> None:
    idle(machine)
    u = machine.uart("USART2")
    setup(u, 115_200, UE | TE)
    frame = 10 * read(u, "BRR") * machine.clock.hz // u.clock_hz
    write(u, "DR", ord("a"))  # straight into the shift register: TXE again, TC cleared
    assert read(u, "SR") & (TXE | TC) == TXE
    write(u, "DR", ord("b"))  # waits in the holding register
    assert read(u, "SR") & (TXE | TC) == 0
    machine.run_for(cycles=frame - 1)
    assert read(u, "SR") & (TXE | TC) == 0 and u.sent == b""
    machine.run_for(cycles=1)  # "a" done, "b" moves to the shift register
    assert read(u, "SR") & (TXE | TC) == TXE and u.sent == b"a"
    write(u, "CR1", UE | TE | TCIE)
    assert not line(machine)  # TC not yet
    write(u, "CR1", UE | TE | TXEIE)
    assert line(machine)  # TXE with TXEIE
    write(u, "CR1", UE | TE | TCIE)
    machine.run_for(cycles=frame)
    assert read(u, "SR") & (TXE | TC) == TXE | TC and u.sent == b"ab"
    assert line(machine)  # TC with TCIE
    write(u, "SR", ~TC & 0xFFFF)  # rc_w0: writing 0 clears TC ...
    assert read(u, "SR") & (TXE | TC) == TXE and not line(machine)
    write(u, "SR", 0xFFFF)  # ... writing 1 sets nothing
    assert read(u, "SR") & TC == 0


def test_a_byte_waits_for_the_transmitter_and_needs_ue(machine: Machine) -> None:
    u = machine.uart("USART2")
    setup(u, 115_200, UE)
    write(u, "DR", ord("q"))  # TE = 0: held
    machine.run_for(us=200)
    assert u.sent == b"" and read(u, "SR") & TXE == 0
    write(u, "CR1", UE | TE)
    machine.run_for(us=200)
    assert u.sent == b"q" and read(u, "SR") & (TXE | TC) == TXE | TC
    write(u, "CR1", TE)  # UE = 0: DR writes are ignored
    write(u, "DR", ord("r"))
    machine.run_for(us=200)
    assert u.sent == b"q"


def test_receive_with_rxne_interrupt(machine: Machine) -> None:
    idle(machine)
    u = machine.uart("USART2")
    setup(u, 115_200, UE | RE | RXNEIE)
    frame = 10 * read(u, "BRR") * machine.clock.hz // u.clock_hz
    u.feed(b"hi")
    machine.run_for(cycles=frame - 1)
    assert read(u, "SR") & RXNE == 0 and not line(machine)
    machine.run_for(cycles=1)
    assert read(u, "SR") & RXNE and line(machine)
    assert machine.nvic.pending >> (16 + USART2_IRQ) & 1  # pended (the firmware leaves it off)
    assert read(u, "DR") == ord("h")  # reading DR clears RXNE and drops the line
    assert read(u, "SR") & RXNE == 0 and not line(machine)
    machine.run_for(cycles=frame)
    assert read(u, "DR") == ord("i") and u.lost == 0


def test_overrun_and_framing_error(machine: Machine) -> None:
    idle(machine)
    u = machine.uart("USART2")
    setup(u, 115_200, UE | RE | RXNEIE)
    frame = 10 * read(u, "BRR") * machine.clock.hz // u.clock_hz
    u.feed(b"12")
    machine.run_for(cycles=2 * frame)  # "2" arrives while "1" is unread
    sr = read(u, "SR")
    assert sr & ORE and sr & RXNE and u.lost == 1 and line(machine)
    assert read(u, "DR") == ord("1")  # SR then DR: RXNE and ORE clear
    assert read(u, "SR") & (ORE | RXNE) == 0 and not line(machine)
    u.feed(b"\x55", framing_error=True)
    machine.run_for(cycles=frame)
    assert read(u, "SR") & (FE | RXNE) == FE | RXNE
    assert read(u, "DR") == 0x55 and read(u, "SR") & FE == 0


def test_bytes_arriving_with_the_receiver_off_are_lost(machine: Machine) -> None:
    u = machine.uart("USART2")
    with pytest.raises(SimulationError, match="BRR is 0"):
        u.feed(b"x")
    setup(u, 115_200, UE)  # RE = 0
    u.feed(b"x")
    machine.run_for(us=100)
    assert read(u, "SR") & RXNE == 0 and u.lost == 1


def test_snapshot_restore_replays_the_line(machine: Machine) -> None:
    u = machine.uart("USART1")
    machine.run_for(us=150)  # "boot\n" half sent
    snap = machine.snapshot()
    machine.run_for(ms=25)
    first = (u.text, list(u.tx_frames))
    machine.restore(snap)
    assert len(u.sent) < 5
    machine.run_for(ms=25)
    assert (u.text, list(u.tx_frames)) == first


def test_firmware_log_as_text(machine: Machine) -> None:
    machine.run_for(ms=35)
    u = machine.uart("USART1")
    assert u.text == "boot\ntick 1\ntick 2\ntick 3\n"
    assert machine.read_symbol("lines_logged") == 4
    tick1 = u.tx_frames[len("boot\n")]  # the "t" of "tick 1"
    # SysTick starts once "boot\n" is queued (~0.26 ms); the 10th tick, then one frame
    assert 10.0868 < tick1.cycle / machine.clock.hz * 1e3 < 10.4


def test_text_decodes_with_replacement(machine: Machine) -> None:
    u = machine.uart("USART2")
    setup(u, 115_200, UE | TE)
    write(u, "DR", 0xFF)
    machine.run_for(us=100)
    assert u.sent == b"\xff" and u.text == "\ufffd"


def test_cli_prints_the_uart_text(firmware: dict[str, Path]) -> None:
    result = harness("run", "--firmware", str(firmware["uartlog"]), "--ms", "25",
                     "--uart", "USART1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "USART1:\nboot\ntick 1\ntick 2\n" in result.stdout
    bad = harness("run", "--firmware", str(firmware["uartlog"]), "--uart", "USART9")
    assert bad.returncode == 2 and "--uart USART9: board ASILB-M4 has no peripheral" in bad.stderr
