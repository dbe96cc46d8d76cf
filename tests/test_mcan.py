"""The M_CAN controller model on a simulated bus, driven through its registers."""

from __future__ import annotations

import struct

import pytest
from irq_line import Line

from harness.clock import VirtualClock
from harness.core import native
from harness.network import CanFrame, Network, PythonNode
from harness.peripherals.mcan.message_ram import read_rx_element, write_tx_element
from harness.peripherals.mcan.model import Mcan
from harness.peripherals.mcan.native import NativeMcan
from harness.peripherals.mcan.regs import IR, MCAN_BLOCK

CAN_CLOCK = 40_000_000
# Message RAM layout used by these tests (byte offsets)
SID_FILTERS, XID_FILTERS, FIFO0, FIFO1, TX_BUFFERS = 0x000, 0x040, 0x100, 0x600, 0xB00


def offset(name: str) -> int:
    from harness.peripherals.mcan.regs import MCAN_BLOCK

    return MCAN_BLOCK.register(name).offset


def configure(m: Mcan, fifo0: int = 4, fifo1: int = 4, overwrite: bool = False) -> None:
    w = lambda reg, value: m.write(offset(reg), 4, value)  # noqa: E731
    w("CCCR", 0b11)  # INIT + CCE
    w("CCCR", 0b11 | 1 << 8 | 1 << 9)  # + FDOE, BRSE
    w("NBTP", (3 << 25) | (0 << 16) | (62 << 8) | 15)  # 40 MHz / 80 tq = 500 kbit/s
    w("DBTP", (0 << 16) | (14 << 8) | (3 << 4) | 3)  # 40 MHz / 20 tq = 2 Mbit/s
    w("SIDFC", SID_FILTERS | 2 << 16)
    w("XIDFC", XID_FILTERS | 1 << 16)
    w("RXF0C", FIFO0 | fifo0 << 16 | 2 << 24 | int(overwrite) << 31)
    w("RXF1C", FIFO1 | fifo1 << 16)
    w("RXESC", 7 | 7 << 4)  # 64-byte data fields
    w("TXBC", TX_BUFFERS | 4 << 16)
    w("TXESC", 7)
    w("GFC", 2 << 4 | 2 << 2)  # reject non-matching frames
    # Filters: 0x100-0x1FF -> FIFO 0, 0x300 (dual) -> FIFO 1; 0x18FF00xx -> FIFO 0
    struct.pack_into("<I", m.ram, SID_FILTERS, 0 << 30 | 1 << 27 | 0x100 << 16 | 0x1FF)
    struct.pack_into("<I", m.ram, SID_FILTERS + 4, 1 << 30 | 2 << 27 | 0x300 << 16 | 0x300)
    struct.pack_into("<II", m.ram, XID_FILTERS, 1 << 29 | 0x18FF0000, 2 << 30 | 0x1FFFFF00)
    w("IE", IR["RF0N"] | IR["RF1N"] | IR["TC"] | IR["RF0L"])
    w("ILS", IR["TC"])  # TX complete on line 1, the rest on line 0
    w("ILE", 0b11)
    w("TXBTIE", 0xF)
    w("CCCR", 1 << 8 | 1 << 9)  # leave INIT: on the bus


@pytest.fixture(params=[Mcan, NativeMcan], ids=["python", "native"])
def setup(request: pytest.FixtureRequest) -> tuple[Network, Mcan, PythonNode, tuple[Line, Line]]:
    """The controller on a bus: the Python model, and the one with its data path in C."""
    net = Network()
    bus = net.can_bus("can0", 500_000, 2_000_000)
    lines = (Line(), Line())
    clock = VirtualClock(120_000_000, native.new_context())  # the C side reads its counter
    mcan = request.param("MCAN0", 0x4000_6000, clock, lines, memoryview(bytearray(0x2000)),
                         CAN_CLOCK)  # fmt: skip
    mcan.name = "ecu"
    bus.attach(mcan)
    mcan.bus_request.append(bus.request)
    peer = PythonNode("peer", bus)
    configure(mcan)
    return net, mcan, peer, lines


def fifo_status(m: Mcan, n: int) -> tuple[int, int, int]:
    r = m.regs
    return (r.get_field(f"RXF{n}S", f"F{n}FL"), r.get_field(f"RXF{n}S", f"F{n}GI"),
            r.get_field(f"RXF{n}S", f"F{n}PI"))  # fmt: skip


def test_bit_rates_come_from_nbtp_and_dbtp(setup: tuple) -> None:
    _, mcan, _, _ = setup
    assert mcan.nominal_bitrate() == 500_000
    assert mcan.data_bitrate() == 2_000_000


def test_configuration_is_protected_outside_init_and_cce(setup: tuple) -> None:
    _, mcan, _, _ = setup
    before = mcan.regs["NBTP"]
    mcan.write(offset("NBTP"), 4, 0)
    assert mcan.regs["NBTP"] == before
    assert mcan.regs["CCCR"] & 0b11 == 0  # CCE cleared with INIT


def test_receive_into_fifo0_with_interrupt_and_acknowledge(setup: tuple) -> None:
    net, mcan, peer, lines = setup
    peer.send(CanFrame(0x123, bytes(range(12)), is_fd=True, brs=True))
    net.run_for(ms=1)
    assert fifo_status(mcan, 0) == (1, 0, 1)
    frame, filter_index, _stamp = read_rx_element(mcan.ram, FIFO0)
    assert frame.arbitration_id == 0x123 and frame.data == bytes(range(12)) and frame.brs
    assert filter_index == 0
    assert mcan.regs["IR"] & IR["RF0N"] and lines[0].level
    mcan.write(offset("IR"), 4, IR["RF0N"])  # write 1 to clear
    assert not lines[0].level
    mcan.write(offset("RXF0A"), 4, 0)
    assert fifo_status(mcan, 0) == (0, 1, 1)


def test_filters_route_and_reject(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    peer.send(CanFrame(0x300, b"\x01"))  # dual filter -> FIFO 1
    peer.send(CanFrame(0x400, b"\x02"))  # no filter: rejected by GFC
    peer.send(CanFrame(0x18FF0042, b"\x03", is_extended=True))  # extended filter -> FIFO 0
    net.run_for(ms=2)
    assert fifo_status(mcan, 1)[0] == 1
    assert read_rx_element(mcan.ram, FIFO1)[0].arbitration_id == 0x300
    assert fifo_status(mcan, 0)[0] == 1
    assert read_rx_element(mcan.ram, FIFO0)[0].arbitration_id == 0x18FF0042


def test_full_fifo_loses_new_frames_in_blocking_mode(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    for i in range(6):
        peer.send(CanFrame(0x100 + i, bytes([i])))
    net.run_for(ms=3)
    fill, _, _ = fifo_status(mcan, 0)
    assert fill == 4 and mcan.regs.get_field("RXF0S", "F0F") == 1
    assert mcan.regs.get_field("RXF0S", "RF0L") == 1 and mcan.regs["IR"] & IR["RF0L"]
    kept = [read_rx_element(mcan.ram, FIFO0 + 72 * i)[0].arbitration_id for i in range(4)]
    assert kept == [0x100, 0x101, 0x102, 0x103]  # the first four; the last two were lost
    assert mcan.regs["IR"] & IR["RF0W"]  # watermark 2 passed


def test_overwrite_mode_keeps_the_newest() -> None:
    net = Network()
    bus = net.can_bus("can0", 500_000, 2_000_000)
    mcan = Mcan("ecu", 0, VirtualClock(1000), (Line(), Line()), memoryview(bytearray(0x2000)),
                CAN_CLOCK)  # fmt: skip
    bus.attach(mcan)
    peer = PythonNode("peer", bus)
    configure(mcan, fifo0=2, overwrite=True)
    for i in range(3):
        peer.send(CanFrame(0x100 + i))
    net.run_for(ms=3)
    fill, get, _ = fifo_status(mcan, 0)
    assert fill == 2 and get == 1
    assert read_rx_element(mcan.ram, FIFO0 + 72 * get)[0].arbitration_id == 0x101


def test_transmit_from_dedicated_buffers_lowest_id_first(setup: tuple) -> None:
    net, mcan, peer, lines = setup
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x300, b"\xaa"))
    write_tx_element(mcan.ram, TX_BUFFERS + 72, CanFrame(0x200, bytes(64), is_fd=True, brs=True))
    mcan.write(offset("TXBAR"), 4, 0b11)
    assert mcan.regs["TXBRP"] == 0b11
    net.run_for(ms=2)
    assert [f.arbitration_id for f in peer.received] == [0x200, 0x300]
    assert peer.received[0].brs and len(peer.received[0].data) == 64
    assert mcan.regs["TXBRP"] == 0 and mcan.regs["TXBTO"] == 0b11
    assert mcan.regs["IR"] & IR["TC"] and lines[1].level  # TC routed to line 1
    assert not lines[0].level


def test_fd_frames_are_sent_classic_without_fdoe(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    mcan.write(offset("CCCR"), 4, 0b11)  # INIT + CCE: mode bits are writable
    mcan.write(offset("CCCR"), 4, 0)  # FDOE and BRSE off, back on the bus
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x123, bytes(range(16)), is_fd=True, brs=True))
    mcan.write(offset("TXBAR"), 4, 1)
    net.run_for(ms=1)
    assert peer.received[0] == CanFrame(0x123, bytes(range(8)),
                                        timestamp_ns=peer.received[0].timestamp_ns,
                                        channel="can0")  # fmt: skip


def test_mode_bits_are_locked_outside_configuration(setup: tuple) -> None:
    _net, mcan, _peer, _ = setup
    mcan.write(offset("CCCR"), 4, 0)  # on the bus: clearing FDOE/BRSE has no effect
    assert mcan.regs["CCCR"] == 1 << 8 | 1 << 9
    mcan.write(offset("CCCR"), 4, 1)  # INIT alone (CCE = 0): still locked
    assert mcan.regs["CCCR"] == 1 | 1 << 8 | 1 << 9


def test_cancellation_of_a_pending_buffer(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    mcan.write(offset("CCCR"), 4, 1)  # INIT: nothing leaves
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x100))
    mcan.write(offset("TXBAR"), 4, 1)
    mcan.write(offset("TXBCR"), 4, 1)
    assert mcan.regs["TXBRP"] == 0 and mcan.regs["TXBCF"] == 1
    mcan.write(offset("CCCR"), 4, 0)
    net.run_for(ms=1)
    assert peer.received == []


def test_controller_in_init_neither_sends_nor_receives(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    mcan.write(offset("CCCR"), 4, 1)
    peer.send(CanFrame(0x123))
    net.run_for(ms=1)
    assert fifo_status(mcan, 0)[0] == 0


# ---- TX FIFO / queue, TX events, test modes, fault confinement ----

EVENTS = 0x1000  # TX event FIFO in the test layout


def reconfigure(m: Mcan, **registers: int) -> None:
    """Back into configuration, write `registers`, and onto the bus again."""
    cccr = m.regs["CCCR"]
    m.write(offset("CCCR"), 4, 0b11 | cccr)
    for name, value in registers.items():
        m.write(offset(name), 4, value)
    m.write(offset("CCCR"), 4, registers.get("CCCR", cccr) & ~0b11)


def txfqs(m: Mcan) -> int:
    return m.read(offset("TXFQS"), 4)


def queue_frame(m: Mcan, frame: CanFrame, marker: int = 0, event: bool = False) -> int:
    """Firmware's TX FIFO/queue step: write at the put index, request it; returns the index."""
    put = txfqs(m) >> 16 & 0x1F
    write_tx_element(m.ram, TX_BUFFERS + 72 * put, frame, marker, event)
    m.write(offset("TXBAR"), 4, 1 << put)
    return put


def fresh_controller() -> tuple[Network, Mcan, PythonNode]:
    """A controller just out of reset, configured by the test itself."""
    net = Network()
    bus = net.can_bus("can0", 500_000, 2_000_000)
    mcan = Mcan("ecu", 0, net.clock, (Line(), Line()), memoryview(bytearray(0x2000)), CAN_CLOCK)
    bus.attach(mcan)
    mcan.bus_request.append(bus.request)
    return net, mcan, PythonNode("peer", bus)


@pytest.fixture
def timed() -> tuple[Network, Mcan, PythonNode]:
    """A controller on the network's own clock, for behaviour that takes time on its own."""
    net, mcan, peer = fresh_controller()
    configure(mcan)
    return net, mcan, peer


def test_tx_fifo_sends_in_request_order(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    reconfigure(mcan, TXBC=TX_BUFFERS | 2 << 16 | 3 << 24)  # 2 dedicated + 3-element FIFO
    assert txfqs(mcan) == 3 | 2 << 8 | 2 << 16  # 3 free, get = put = 2
    puts = [queue_frame(mcan, CanFrame(ident)) for ident in (0x300, 0x100, 0x200)]
    assert puts == [2, 3, 4] and txfqs(mcan) >> 21 & 1
    queue_frame(mcan, CanFrame(0x50))  # full: ignored
    assert mcan.regs["TXBRP"] == 0b11100
    mcan.write(offset("IE"), 4, mcan.regs["IE"] | IR["TFE"])
    net.run_for(ms=2)
    assert [f.arbitration_id for f in peer.received] == [0x300, 0x100, 0x200]  # FIFO order
    assert txfqs(mcan) & 0x3F == 3 and mcan.regs["IR"] & IR["TFE"]
    assert txfqs(mcan) >> 8 & 0x1F == 2  # wrapped round to the first element


def test_tx_fifo_competes_with_dedicated_buffers_by_id(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    reconfigure(mcan, TXBC=TX_BUFFERS | 1 << 16 | 2 << 24)
    queue_frame(mcan, CanFrame(0x200))
    queue_frame(mcan, CanFrame(0x080))  # behind 0x200 in the FIFO
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x100))
    mcan.write(offset("TXBAR"), 4, 1)
    net.run_for(ms=2)
    assert [f.arbitration_id for f in peer.received] == [0x100, 0x200, 0x080]


def test_tx_queue_sends_lowest_id_first(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    reconfigure(mcan, TXBC=TX_BUFFERS | 0 << 16 | 3 << 24 | 1 << 30)  # 3-element queue
    puts = [queue_frame(mcan, CanFrame(ident)) for ident in (0x300, 0x100, 0x200)]
    assert puts == [0, 1, 2] and txfqs(mcan) >> 21 & 1
    net.run_for(ms=2)
    assert [f.arbitration_id for f in peer.received] == [0x100, 0x200, 0x300]
    assert txfqs(mcan) == 0  # put index back to the first free buffer, not full


def test_tx_event_fifo_records_sent_frames(setup: tuple) -> None:
    from harness.peripherals.mcan.message_ram import read_tx_event

    net, mcan, peer, _ = setup
    reconfigure(mcan, TXEFC=EVENTS | 2 << 16 | 1 << 24)  # 2 elements, watermark 1
    for i, ident in enumerate((0x101, 0x102, 0x103)):
        write_tx_element(mcan.ram, TX_BUFFERS + 72 * i, CanFrame(ident), marker=0xA0 + i,
                         event=True)  # fmt: skip
    write_tx_element(mcan.ram, TX_BUFFERS + 72 * 3, CanFrame(0x104))  # no event wanted
    mcan.write(offset("TXBAR"), 4, 0b1111)
    net.run_for(ms=2)
    status = mcan.regs["TXEFS"]
    assert status & 0x3F == 2 and status >> 24 & 1 and status >> 25 & 1  # 2 kept, full, lost
    ir = mcan.regs["IR"]
    assert ir & IR["TEFN"] and ir & IR["TEFW"] and ir & IR["TEFF"] and ir & IR["TEFL"]
    events = [read_tx_event(mcan.ram, EVENTS + 8 * i) for i in range(2)]
    sent_us = [f.timestamp_ns // 1000 for f in peer.received[:2]]
    assert events == [(0x101, 0xA0, 1, sent_us[0]), (0x102, 0xA1, 1, sent_us[1])]
    mcan.write(offset("TXEFA"), 4, 1)  # both read
    assert mcan.regs.get_field("TXEFS", "EFFL") == 0 and mcan.regs.get_field("TXEFS", "EFGI") == 0


def test_external_loopback_receives_its_own_frames(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    mcan.write(offset("TEST"), 4, 1 << 4)
    assert mcan.regs["TEST"] & 1 << 4 == 0  # TEST is locked until CCCR.TEST is set
    reconfigure(mcan, CCCR=1 << 7 | 1 << 8 | 1 << 9, TEST=1 << 4)
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x123, b"\x42"))
    mcan.write(offset("TXBAR"), 4, 1)
    net.run_for(ms=1)
    assert [f.arbitration_id for f in peer.received] == [0x123]  # on the bus ...
    own, _, _ = read_rx_element(mcan.ram, FIFO0)  # ... and received by itself
    assert fifo_status(mcan, 0)[0] == 1 and own.arbitration_id == 0x123 and own.data == b"\x42"


def test_internal_loopback_keeps_frames_off_the_bus(timed: tuple) -> None:
    net, mcan, peer = timed
    reconfigure(mcan, CCCR=1 << 5 | 1 << 7 | 1 << 8 | 1 << 9, TEST=1 << 4)  # MON + LBCK
    frame = CanFrame(0x123, bytes(8))
    write_tx_element(mcan.ram, TX_BUFFERS, frame)
    start = net.now_ns
    mcan.write(offset("TXBAR"), 4, 1)
    peer.send(CanFrame(0x124))  # the bus is not heard in internal loopback
    net.run_for(ms=1)
    assert [f.arbitration_id for f in peer.sent] == [0x124] and peer.received == []
    assert fifo_status(mcan, 0)[0] == 1 and mcan.regs["TXBTO"] == 1
    _, _, stamp_us = read_rx_element(mcan.ram, FIFO0)
    duration_us = net.bus("can0").duration_ns(frame) // 1000
    assert stamp_us == (start // 1000 + duration_us) & 0xFFFF  # it took its frame time


def test_bus_monitoring_only_listens(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    reconfigure(mcan, CCCR=1 << 5 | 1 << 8 | 1 << 9)  # MON
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x100))
    mcan.write(offset("TXBAR"), 4, 1)
    assert mcan.regs["TXBRP"] == 0  # no transmit requests in bus monitoring mode
    peer.send(CanFrame(0x150))
    net.run_for(ms=1)
    assert peer.received == [] and fifo_status(mcan, 0)[0] == 1


def psr(m: Mcan) -> dict[str, int]:
    value = m.read(offset("PSR"), 4)
    fields = MCAN_BLOCK.register("PSR").fields
    return {f.name: (value & f.mask) >> f.lsb for f in fields}


def test_psr_reports_the_last_frame_and_clears_on_read(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    assert psr(mcan)["LEC"] == 7  # no event since reset
    peer.send(CanFrame(0x123, bytes(12), is_fd=True, brs=True, esi=True))
    net.run_for(ms=1)
    first = psr(mcan)
    assert (first["LEC"], first["DLEC"], first["RFDF"], first["RBRS"], first["RESI"]) == (
        0, 0, 1, 1, 1)  # fmt: skip
    second = psr(mcan)
    assert (second["LEC"], second["DLEC"], second["RFDF"], second["RBRS"]) == (7, 7, 0, 0)


def test_transmit_errors_warning_passive_esi_bus_off_and_recovery(timed: tuple) -> None:
    net, mcan, peer = timed
    for _ in range(12):
        mcan.transmit_error()
    assert mcan.regs.get_field("ECR", "TEC") == 96
    assert psr(mcan)["EW"] == 1 and psr(mcan)["EP"] == 0 and mcan.regs["IR"] & IR["EW"]
    for _ in range(4):
        mcan.transmit_error()
    assert psr(mcan)["EP"] == 1 and mcan.regs["IR"] & IR["EP"]
    assert mcan.read(offset("ECR"), 4) >> 16 == 16  # CEL counted 16 errors ...
    assert mcan.regs.get_field("ECR", "CEL") == 0  # ... and cleared when read
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x100, bytes(16), is_fd=True))
    mcan.write(offset("TXBAR"), 4, 1)
    net.run_for(ms=1)
    assert peer.received[-1].esi  # an error-passive node sends ESI = 1
    assert mcan.regs.get_field("ECR", "TEC") == 127  # a success counts down
    for _ in range(17):
        mcan.transmit_error()
    assert psr(mcan)["BO"] == 1 and mcan.regs["IR"] & IR["BO"] and mcan.initialising
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x101))
    mcan.write(offset("TXBAR"), 4, 1)
    mcan.write(offset("CCCR"), 4, mcan.regs["CCCR"] & ~1)  # firmware restarts the controller
    recovery_ns = 128 * 11 * 2000  # 128 x 11 recessive bits at 500 kbit/s
    net.run_for(ns=recovery_ns - 1000)
    assert psr(mcan)["BO"] == 1 and peer.received[-1].arbitration_id == 0x100  # still off
    net.run_for(ms=1)
    assert psr(mcan)["BO"] == 0 and mcan.regs.get_field("ECR", "TEC") == 0
    assert peer.received[-1].arbitration_id == 0x101  # sending again after recovery


def test_receive_errors_make_the_node_receive_passive_until_a_good_frame(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    for _ in range(128):
        mcan.receive_error()
    ecr = mcan.regs["ECR"]
    assert ecr >> 15 & 1 and (ecr >> 8) & 0x7F == 127 and psr(mcan)["EP"] == 1
    peer.send(CanFrame(0x100))
    net.run_for(ms=1)
    assert mcan.regs.get_field("ECR", "RP") == 0 and mcan.regs.get_field("ECR", "REC") == 120
    assert psr(mcan)["EP"] == 0 and psr(mcan)["EW"] == 1  # 120 >= 96: still a warning


# ---- error frames on the bus ----


def test_error_frames_count_in_sender_and_receiver_and_the_frame_is_sent_again(
    timed: tuple,
) -> None:
    net, mcan, peer = timed
    bus = net.bus("can0")
    listener = Mcan("listener", 0, net.clock, (Line(), Line()), memoryview(bytearray(0x2000)),
                    CAN_CLOCK)  # fmt: skip
    bus.attach(listener)
    configure(listener)
    bus.inject_errors(3, ids={0x123})
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x123, bytes(8)))
    mcan.write(offset("TXBAR"), 4, 1)
    net.run_for(ms=5)
    assert [f.arbitration_id for f in peer.received] == [0x123]  # once, after three errors
    assert bus.stats.errors == 3 and bus.stats.frames == 1
    assert mcan.regs.get_field("ECR", "TEC") == 3 * 8 - 1  # +8 per error, -1 for the success
    assert listener.regs.get_field("ECR", "REC") == 3 - 1
    clean = net.bus("can0").duration_ns(CanFrame(0x123, bytes(8)))
    assert peer.received[0].timestamp_ns > 3 * clean  # the failed attempts took bus time


def test_repeated_errors_make_the_sender_passive_then_bus_off(timed: tuple) -> None:
    net, mcan, peer = timed
    bus = net.bus("can0")
    bus.inject_errors(16)
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x100, bytes(16), is_fd=True, brs=True))
    mcan.write(offset("TXBAR"), 4, 1)
    net.run_for(ms=20)
    assert peer.received[0].esi  # TEC reached 128 before it got through: error passive
    assert mcan.regs.get_field("ECR", "TEC") == 127 and psr(mcan)["EP"] == 0  # active again
    assert mcan.regs["IR"] & IR["EP"]  # the status changes were interrupts
    bus.inject_errors(20)
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x101, bytes(8)))
    mcan.write(offset("TXBAR"), 4, 1)
    net.run_for(ms=20)
    assert psr(mcan)["BO"] == 1 and mcan.initialising  # TEC passed 255: bus-off
    assert [f.arbitration_id for f in peer.received] == [0x100]
    assert mcan.regs["TXBRP"] == 1  # still pending; the firmware decides what to do
    mcan.write(offset("CCCR"), 4, mcan.regs["CCCR"] & ~1)  # restart: 128 x 11 recessive bits
    net.run_for(ms=5)
    assert psr(mcan)["BO"] == 0 and [f.arbitration_id for f in peer.received] == [0x100, 0x101]


# ---- configured as other drivers configure it (not the project's HAL) ----

TX_CONFIGS = {
    # name: (TXBC fields beyond the start address, how many frames the driver can queue)
    "buffers only": (3 << 16, 3),
    "FIFO only": (0 << 16 | 4 << 24, 4),
    "queue only": (0 << 16 | 4 << 24 | 1 << 30, 4),
    "buffers + FIFO": (2 << 16 | 3 << 24, 5),
    "buffers + queue": (2 << 16 | 3 << 24 | 1 << 30, 5),
}


def send_like_a_driver(m: Mcan, frame: CanFrame, ndtb: int, slot: int) -> bool:
    """Dedicated buffers by number, FIFO/queue at the put index after checking TFQF."""
    if slot < ndtb:
        index = slot
    else:
        status = txfqs(m)
        if status >> 21 & 1:
            return False  # full: the driver refuses the send
        index = status >> 16 & 0x1F
    write_tx_element(m.ram, TX_BUFFERS + 72 * index, frame)
    m.write(offset("TXBAR"), 4, 1 << index)
    return True


@pytest.mark.parametrize("config", list(TX_CONFIGS))
def test_every_tx_configuration_sends(config: str) -> None:
    net, mcan, peer = fresh_controller()
    txbc, capacity = TX_CONFIGS[config]
    configure(mcan)
    reconfigure(mcan, TXBC=TX_BUFFERS | txbc)
    ndtb, tfqs, queue = txbc >> 16 & 0x3F, txbc >> 24 & 0x3F, txbc >> 30 & 1
    if tfqs and not queue:  # a FIFO starts empty: free level = its size, not full
        assert txfqs(mcan) & 0x3F == tfqs and not txfqs(mcan) >> 21 & 1
    frames = [CanFrame(0x200 + i, bytes([i])) for i in range(capacity)]
    assert all(send_like_a_driver(mcan, f, ndtb, i) for i, f in enumerate(frames))
    assert not send_like_a_driver(mcan, CanFrame(0x7FF), ndtb, capacity) or not tfqs
    net.run_for(ms=5)
    assert sorted(f.arbitration_id for f in peer.received) == [f.arbitration_id for f in frames]
    assert mcan.regs["TXBRP"] == 0
    if tfqs and not queue:
        assert txfqs(mcan) & 0x3F == tfqs  # empty again


def test_fifo_only_driver_sends_right_after_reset() -> None:
    # The stock-driver set-up that never transmitted: no dedicated buffers, a 3-deep FIFO,
    # configured straight after reset (TXFQS has not been written by anyone).
    net, mcan, peer = fresh_controller()
    w = lambda reg, value: mcan.write(offset(reg), 4, value)  # noqa: E731
    w("CCCR", 0b11)
    w("NBTP", (3 << 25) | (62 << 8) | 15)
    w("TXBC", TX_BUFFERS | 3 << 24)
    w("CCCR", 0)
    assert txfqs(mcan) == 3 | 0 << 8 | 0 << 16  # 3 free, get = put = 0, not full
    assert send_like_a_driver(mcan, CanFrame(0x123, b"hi"), 0, 0)
    net.run_for(ms=1)
    assert [f.arbitration_id for f in peer.received] == [0x123]


def test_setting_cce_resets_fifo_and_transmit_state(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    reconfigure(mcan, TXBC=TX_BUFFERS | 1 << 16 | 3 << 24, TXEFC=EVENTS | 2 << 16)
    peer.send(CanFrame(0x111))
    peer.send(CanFrame(0x112))
    queue_frame(mcan, CanFrame(0x300), event=True)
    net.run_for(ms=2)  # two frames in RX FIFO 0, one TX event, TXBTO set
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x400))
    mcan.write(offset("CCCR"), 4, 1)  # INIT: the requests below stay pending
    mcan.write(offset("TXBAR"), 4, 1)
    queue_frame(mcan, CanFrame(0x401))
    mcan.write(offset("TXBCR"), 4, 1 << 2)  # one cancelled: TXBCF
    assert mcan.regs["RXF0S"] & 0x7F == 2 and mcan.regs["TXEFS"] & 0x3F == 1
    assert mcan.regs["TXBRP"] == 1 and mcan.regs["TXBCF"] and mcan.regs["TXBTO"]
    mcan.write(offset("CCCR"), 4, 0b11)  # CCE: the re-initialisation starts
    for name in ("RXF0S", "RXF1S", "TXBRP", "TXBTO", "TXBCF", "TXEFS", "HPMS"):
        assert mcan.read(offset(name), 4) == 0, name
    assert txfqs(mcan) == 3 | 1 << 8 | 1 << 16  # empty FIFO from its first element
    mcan.write(offset("CCCR"), 4, 0)
    net.run_for(ms=2)
    assert [f.arbitration_id for f in peer.received] == [0x300]  # dropped requests stay dropped
    assert queue_frame(mcan, CanFrame(0x222)) == 1
    net.run_for(ms=1)
    assert peer.received[-1].arbitration_id == 0x222


def test_interrupt_handler_that_writes_back_what_it_read(setup: tuple) -> None:
    net, mcan, peer, lines = setup
    peer.send(CanFrame(0x123))
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x050))
    mcan.write(offset("TXBAR"), 4, 1)
    net.run_for(ms=1)
    seen = mcan.read(offset("IR"), 4)
    assert seen == IR["RF0N"] | IR["TC"] and lines[0].level and lines[1].level
    peer.send(CanFrame(0x300))  # into FIFO 1, between the handler's read and its write-back
    net.run_for(ms=1)
    mcan.write(offset("IR"), 4, seen)  # clears exactly what the handler saw
    assert mcan.regs["IR"] == IR["RF1N"] and lines[0].level and not lines[1].level
    assert fifo_status(mcan, 0)[0] == 1 and fifo_status(mcan, 1)[0] == 1


def test_bus_monitoring_and_back(setup: tuple) -> None:
    net, mcan, peer, _ = setup
    reconfigure(mcan, CCCR=mcan.regs["CCCR"] | 1 << 5)  # MON
    peer.send(CanFrame(0x123))
    write_tx_element(mcan.ram, TX_BUFFERS, CanFrame(0x050))
    mcan.write(offset("TXBAR"), 4, 1)  # ignored while monitoring
    net.run_for(ms=1)
    assert fifo_status(mcan, 0)[0] == 1 and peer.received == [] and mcan.regs["TXBRP"] == 0
    reconfigure(mcan, CCCR=mcan.regs["CCCR"] & ~(1 << 5))
    mcan.write(offset("TXBAR"), 4, 1)
    net.run_for(ms=1)
    assert [f.arbitration_id for f in peer.received] == [0x050]


# Reset values from the register table of Bosch's M_CAN user's manual, revision 3.2.1 (the
# revision CREL reports), for every register the model declares.
BOSCH_RESET_VALUES = {
    "CREL": 0x32150320, "ENDN": 0x87654321, "DBTP": 0x00000A33, "CCCR": 0x00000001,
    "NBTP": 0x06000A03, "ECR": 0, "PSR": 0x00000707, "IR": 0, "IE": 0, "ILS": 0, "ILE": 0,
    "GFC": 0, "SIDFC": 0, "XIDFC": 0, "XIDAM": 0x1FFFFFFF, "HPMS": 0, "RXF0C": 0, "RXF0S": 0,
    "RXF0A": 0, "RXBC": 0, "RXF1C": 0, "RXF1S": 0, "RXF1A": 0, "RXESC": 0, "TXBC": 0,
    "TXFQS": 0, "TXESC": 0, "TXBRP": 0, "TXBAR": 0, "TXBCR": 0, "TXBTO": 0, "TXBCF": 0,
    "TXBTIE": 0, "TXBCIE": 0, "TXEFC": 0, "TXEFS": 0, "TXEFA": 0,
    "TEST": 0x00000080,  # TEST.RX follows the recessive bus (the table's 0 leaves RX as 'x')
}  # fmt: skip


def test_reset_values_match_the_bosch_register_table() -> None:
    _, mcan, _ = fresh_controller()
    declared = {reg.name for reg in MCAN_BLOCK.registers}
    assert set(BOSCH_RESET_VALUES) <= declared
    assert {n: mcan.read(offset(n), 4) for n in BOSCH_RESET_VALUES} == BOSCH_RESET_VALUES
