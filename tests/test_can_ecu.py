"""Real firmware on the simulated CAN bus: the echo ECU (MCAN0 RX interrupt, FIFO drain)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import Machine
from harness.errors import SimulationError
from harness.network import CanFrame, Network, PythonNode


@pytest.fixture
def rig(firmware: dict[str, Path]) -> tuple[Network, Machine, PythonNode]:
    net = Network()
    net.can_bus("can0", bitrate=500_000, data_bitrate=2_000_000)
    ecu = net.add_ecu("echo", Machine(firmware["canecho"]))
    tester = PythonNode("tester", net.bus("can0"))
    net.run_for(ms=1)  # boot: the driver takes MCAN0 out of INIT
    return net, ecu, tester


def test_firmware_echoes_classic_and_fd_frames(rig: tuple[Network, Machine, PythonNode]) -> None:
    net, ecu, tester = rig
    tester.send(CanFrame(0x123, b"\x01\x02\x03"))
    tester.send(CanFrame(0x200, bytes(range(64)), is_fd=True, brs=True))
    net.run_for(ms=5)
    got = [(f.arbitration_id, f.data, f.is_fd, f.brs) for f in tester.received]
    assert got == [(0x124, b"\x01\x02\x03", False, False), (0x201, bytes(range(64)), True, True)]
    assert ecu.read_symbol("rx_frames") == 2 and ecu.read_symbol("tx_dropped") == 0


def test_response_follows_the_request_by_its_isr_latency(
    rig: tuple[Network, Machine, PythonNode],
) -> None:
    net, _, tester = rig
    tester.send(CanFrame(0x100, bytes(8)))
    net.run_for(ms=2)
    request, response = tester.sent[0], tester.received[0]
    gap_ns = response.timestamp_ns - request.timestamp_ns
    duration = net.bus("can0").duration_ns(CanFrame(0x101, bytes(8)))
    # The echo starts within a few microseconds of the request's end of frame.
    assert duration <= gap_ns < duration + 20_000


def test_a_burst_is_drained_from_the_fifo(rig: tuple[Network, Machine, PythonNode]) -> None:
    net, ecu, tester = rig
    for i in range(6):
        tester.send(CanFrame(0x300 + 2 * i, bytes([i] * 8)))
    net.run_for(ms=10)
    assert sorted(f.arbitration_id for f in tester.received) == [0x301 + 2 * i for i in range(6)]
    assert ecu.read_symbol("rx_frames") == 6


def test_batch_mode_takes_eight_frames_per_interrupt(
    rig: tuple[Network, Machine, PythonNode],
) -> None:
    net, ecu, tester = rig
    tester.send(CanFrame(0x7F0, b"\x01"))  # the echo's control frame: watermark interrupt
    net.run_for(ms=1)
    before = ecu.read_symbol("rx_interrupts")
    for i in range(16):
        tester.send(CanFrame(0x200 + 2 * i, bytes([i])))
    net.run_for(ms=20)
    assert sorted(f.arbitration_id for f in tester.received) == [0x201 + 2 * i for i in range(16)]
    assert ecu.read_symbol("rx_interrupts") - before == 2  # RF0W: once per 8 frames
    assert ecu.read_symbol("tx_dropped") == 0


def test_runs_are_identical(firmware: dict[str, Path]) -> None:
    def run() -> list[CanFrame]:
        net = Network()
        net.can_bus("can0", bitrate=500_000, data_bitrate=2_000_000)
        net.add_ecu("echo", Machine(firmware["canecho"]))
        tester = PythonNode("tester", net.bus("can0"))
        for i in range(4):
            frame = CanFrame(0x10 + i, bytes([i]))
            net.clock.schedule_at(1_000_000 + i * 150_000, lambda f=frame: tester.send(f))
        net.run_for(ms=5)
        return tester.received

    assert run() == run()
    assert len(run()) == 4


def test_ecus_join_before_time_runs(firmware: dict[str, Path]) -> None:
    net = Network()
    net.can_bus("can0")
    late = Machine(firmware["canecho"])
    late.run_for(ms=1)
    with pytest.raises(ValueError, match="add ECUs before either runs"):
        net.add_ecu("late", late)


def test_outcome_does_not_depend_on_how_the_network_is_sliced(firmware: dict[str, Path]) -> None:
    def run(slices: int) -> tuple[object, ...]:
        net = Network()
        net.can_bus("can0", bitrate=500_000, data_bitrate=2_000_000)
        ecu = net.add_ecu("echo", Machine(firmware["canecho"]))
        tester = PythonNode("tester", net.bus("can0"))
        net.run_for(ms=1)
        for i in range(60):  # more than the FIFO and TX buffers hold: some echoes are lost
            tester.send(CanFrame(0x100 + (i % 16) * 2, bytes(8)))
        for _ in range(slices):
            net.run_for(ms=30 / slices)
        received = [(f.arbitration_id, f.timestamp_ns) for f in tester.received]
        return received, ecu.read_symbol("rx_frames"), ecu.read_symbol("tx_dropped")

    whole = run(1)
    assert run(7) == whole and run(30) == whole
    assert len(whole[0]) > 16  # echoes did go out


def test_a_controller_whose_bit_timing_differs_from_its_bus_stops_the_run(
    firmware: dict[str, Path],
) -> None:
    """On a real bus an ECU at the wrong bit rate cannot communicate: never run on as if it
    could (the echo firmware is built for 500 kbit/s and 2 Mbit/s)."""
    for nominal, data in [(1_000_000, 2_000_000), (500_000, 4_000_000), (125_000, 125_000)]:
        net = Network()
        net.can_bus("can0", nominal, data)
        net.add_ecu("ECHO", Machine(firmware["canecho"]))
        with pytest.raises(SimulationError, match=r"ECHO\.MCAN0 left INIT with bit timing for "
                           r"500 kbit/s \(data 2 Mbit/s\), but can0 runs at"):  # fmt: skip
            net.run_for(ms=2)
    net = Network()
    net.can_bus("can0", 1_000_000, 4_000_000)
    net.add_ecu("ELC", Machine(firmware["elc_1m"]))  # built for that bus: runs
    spy = PythonNode("spy", net.bus("can0"))
    net.run_for(ms=30)
    assert any(f.arbitration_id == 0x300 for f in spy.received)  # LightStatus every 10 ms
