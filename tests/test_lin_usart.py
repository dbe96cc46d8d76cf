"""The USART in LIN mode on a LIN bus: break generation and detection, the readback of its own
characters, errors it flags (framing, noise, overrun), collisions and the baud-rate check.
Python plays the firmware here, writing the USART's registers; the light controller's own
LIN master is tested in test_elc_lin.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import Machine
from harness.errors import SimulationError
from harness.frames.lin import BREAK_BITS, LineSymbol, checksum, nominal_ns, protected_id
from harness.network import Network
from harness.network.lin import LinBus
from harness.peripherals.usart import USART_BLOCK, Usart

SR, CR1, CR2 = (USART_BLOCK.register(n) for n in ("SR", "CR1", "CR2"))
RXNE, TXE, FE, NF, LBD = (SR.field(n).mask for n in ("RXNE", "TXE", "FE", "NF", "LBD"))
UE, TE, RE, SBK = (CR1.field(n).mask for n in ("UE", "TE", "RE", "SBK"))
LINEN, LBDL = (CR2.field(n).mask for n in ("LINEN", "LBDL"))
BRK = "break"
BREAK_BYTE = (0x00, "FE")  # a break is received as 0x00 with a framing error, then LBD


def write(u: Usart, reg: str, value: int) -> None:
    u.write(USART_BLOCK.register(reg).offset, 4, value)


def read(u: Usart, reg: str) -> int:
    return u.read(USART_BLOCK.register(reg).offset, 4)


def lin_ecu(firmware: dict[str, Path], *, baud: int = 19_200, cr2: int = LINEN | LBDL,
            bitrate: int = 19_200) -> tuple[Network, LinBus, Usart]:  # fmt: skip
    """An ECU whose USART2 (set up from Python) is on LIN bus lin0; its firmware uses only
    USART1."""
    net = Network()
    machine = Machine(firmware["uartlog"])
    net.add_ecu("ECU", machine, can0=None)
    lin = net.lin_bus("lin0", bitrate)
    net.attach(net.port("ECU", "USART2"), "lin0")
    u = machine.uart("USART2")
    write(u, "BRR", round(u.clock_hz / baud))
    write(u, "CR2", cr2)
    write(u, "CR1", UE | TE | RE)
    return net, lin, u


def listen(net: Network, u: Usart, ms: float) -> list[object]:
    """What the USART receives for `ms`, polled every 100 us (a byte lasts 520 us): bytes,
    BRK for a detected break, (byte, "FE") / (byte, "NF") for flagged ones."""
    got: list[object] = []
    for _ in range(round(ms * 10)):
        net.run_for(us=100)
        sr = read(u, "SR")
        if sr & RXNE:
            byte = read(u, "DR") & 0xFF
            flag = "FE" if sr & FE else "NF" if sr & NF else None
            got.append(byte if flag is None else (byte, flag))
        if sr & LBD:
            got.append(BRK)
            write(u, "SR", ~LBD & 0xFFFF)
    return got


def send(net: Network, u: Usart, data: bytes) -> None:
    for byte in data:
        net.run_until(lambda: bool(read(u, "SR") & TXE), timeout_ms=5)
        write(u, "DR", byte)


def test_a_slave_usart_detects_the_break_and_reads_sync_and_protected_id(firmware):
    net, lin, u = lin_ecu(firmware)
    lin.send_header(0x10)
    assert listen(net, u, 3) == [BREAK_BYTE, BRK, 0x55, protected_id(0x10)]
    net.run_for(ms=10)
    assert lin.records[-1].status == "no response"  # the ECU did not answer


def test_a_slave_usart_answers_and_the_bus_sees_an_ok_frame(firmware):
    net, lin, u = lin_ecu(firmware)
    lamp = lin.node("lamp")
    lin.frame_lengths[0x21] = 2
    lin.send_header(0x21)
    assert listen(net, u, 2) == [BREAK_BYTE, BRK, 0x55, protected_id(0x21)]
    send(net, u, bytes([0xA5, 0x01, checksum(b"\xa5\x01", protected_id(0x21))]))
    net.run_for(ms=5)
    (record,) = lamp.received
    assert (record.status, record.data, record.publisher) == ("ok", b"\xa5\x01", "ECU.USART2")


def test_a_master_usart_sends_break_sync_and_pid_and_reads_the_answer_back(firmware):
    net, lin, u = lin_ecu(firmware)
    switch = lin.node("switch")
    switch.publish(0x10, b"\x05\x80")
    net.run_for(ms=1)
    start = net.now_ns
    write(u, "CR1", UE | TE | RE | SBK)  # break first ...
    send(net, u, bytes([0x55, protected_id(0x10)]))  # ... then sync and PID, back to back
    got = listen(net, u, 6)
    check = checksum(b"\x05\x80", protected_id(0x10))
    # its own break, sync and PID read back, then the switch's response
    assert got == [BREAK_BYTE, BRK, 0x55, 0x50, 0x05, 0x80, check]
    assert not read(u, "CR1") & SBK  # cleared when the break ended
    (record,) = switch.received
    assert (record.status, record.data, record.publisher) == ("ok", b"\x05\x80", "switch")
    # the header at the USART's own baud rate (BRR 1562: 19,206 baud), a break of its board
    # parameter's length; the response at the bus's
    assert u.break_bits == BREAK_BITS
    assert record.start_ns - start < 1_000  # the break went out at once (within a poll)
    header = (BREAK_BITS + 1 + 20) * 1562 * 1e9 / u.clock_hz
    response = nominal_ns(2, 19_200) - (BREAK_BITS + 1 + 20) * 1e9 / 19_200
    assert abs(record.timestamp_ns - record.start_ns - (header + response)) <= 2


@pytest.mark.parametrize(("lbdl", "seen"), [(LBDL, [BREAK_BYTE]), (0, [BREAK_BYTE, BRK])])
def test_break_detection_length_is_10_or_11_bits(firmware, lbdl, seen):
    net, lin, u = lin_ecu(firmware, cr2=LINEN | lbdl)
    lin.wake_up()  # 1 ms dominant: a break for everyone
    assert listen(net, u, 2) == [BREAK_BYTE, BRK]
    # the master's break is 13 bits; a 10-bit "break" is a 0x00 with its stop bit low: only
    # a 10-bit detector (LBDL = 0) takes it as a break
    symbol = LineSymbol.byte(net.now_ns, lin.bit_ns, 0x00, framing_error=True)
    lin.transmit("noise", symbol)
    assert listen(net, u, 1) == seen


def test_without_lin_mode_a_break_is_a_zero_byte_with_a_framing_error(firmware):
    net, lin, u = lin_ecu(firmware, cr2=0)
    lin.send_header(0x10)
    assert listen(net, u, 3) == [(0x00, "FE"), 0x55, 0x50]


def test_two_answers_collide_and_the_usart_reads_back_the_wired_and(firmware):
    net, lin, u = lin_ecu(firmware)
    other = lin.node("other lamp")
    other.publish(0x23, b"\x62\x01")  # an event-triggered frame: both have news
    lin.send_header(0x23)
    assert listen(net, u, 2) == [BREAK_BYTE, BRK, 0x55, protected_id(0x23)]
    send(net, u, b"\x61")  # it sends 0x61, the other lamp 0x62: the wire carries 0x60
    # its readback differs from what it sent (a bit error); and as it answered up to one
    # poll (100 us, 2 bits) after the other lamp, the receivers flag noise too
    assert listen(net, u, 1) == [(0x60, "NF")]
    net.run_for(ms=10)
    assert lin.records[-1].status == "collision"
    assert other.bit_errors == 1  # the other node saw it too and stopped


def test_a_framing_error_in_a_response_is_flagged_by_the_usart(firmware):
    net, lin, u = lin_ecu(firmware)
    lin.node("switch").publish(0x10, b"\x05\x80")
    lin.inject(0x10, "framing")
    write(u, "CR1", UE | TE | RE | SBK)
    send(net, u, bytes([0x55, 0x50]))
    got = listen(net, u, 6)
    assert got[:5] == [BREAK_BYTE, BRK, 0x55, 0x50, (0x05, "FE")]
    assert lin.records[-1].status == "framing error"


def test_a_usart_at_the_wrong_baud_rate_stops_the_run(firmware):
    _net, _lin, u = lin_ecu(firmware, baud=9_600)
    with pytest.raises(SimulationError, match=r"USART2 runs at 9600 baud .* on a 19200 bit/s"):
        write(u, "CR1", UE | TE | RE | SBK)
