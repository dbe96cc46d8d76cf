"""ISO-TP (ISO 15765-2) of the light controller's diagnostic channel: flow control with block
sizes and STmin as can-isotp announces them, a lost consecutive frame, timeouts on each side,
an overflow, classic CAN padding. Raw frames come from a Python node, so the ECU's side is
checked frame by frame on the bus; the client is the real can-isotp."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from udsoncan.exceptions import TimeoutException

from harness import Machine
from harness.frames.can import CanFrame
from harness.network import Network
from harness.network.can import PythonNode
from harness.uds import uds_client

REQUEST, RESPONSE = 0x7E0, 0x7E8


@pytest.fixture
def bench(firmware: dict[str, Path]) -> tuple[Network, PythonNode]:
    net = Network()
    net.can_bus("can0", bitrate=500_000, data_bitrate=2_000_000)
    net.add_ecu("ELC", Machine(firmware["elc"]))
    tester = PythonNode("tester", net.bus("can0"))
    net.run_for(ms=150)
    return net, tester


def send(net: Network, tester: PythonNode, data: bytes) -> None:
    tester.send(CanFrame(REQUEST, data.ljust(8, b"\xcc")))
    net.run_for(ms=2)


def answers(tester: PythonNode, since: int = 0) -> list[CanFrame]:
    return [f for f in tester.received if f.arbitration_id == RESPONSE and f.timestamp_ns > since]


# the 27-byte answer to "supported DTCs" (0x19 0A): a first frame and 3 consecutive frames


@pytest.mark.parametrize("blocksize", [0, 1, 8])
@pytest.mark.parametrize("stmin", [0, 1, 0xF1])
def test_the_ecu_honours_the_testers_block_size_and_stmin(
    bench: tuple[Network, PythonNode], blocksize: int, stmin: int
) -> None:
    net, tester = bench
    with uds_client(net, fd=False, isotp={"blocksize": blocksize, "stmin": stmin}) as client:
        start = net.now_ns
        assert len(client.get_supported_dtc().service_data.dtcs) == 6
    frames = [f for f in tester.received if f.timestamp_ns > start
              and f.arbitration_id in (REQUEST, RESPONSE)]  # fmt: skip
    kinds = [("FC" if f.data[0] >> 4 == 3 else "CF" if f.data[0] >> 4 == 2 else "FF" if
              f.data[0] >> 4 == 1 else "SF") for f in frames]  # fmt: skip
    expected = {0: ["SF", "FF", "FC", "CF", "CF", "CF"],
                1: ["SF", "FF", "FC", "CF", "FC", "CF", "FC", "CF"],
                8: ["SF", "FF", "FC", "CF", "CF", "CF"]}[blocksize]  # fmt: skip
    assert kinds == expected
    assert all(len(f.data) == 8 and not f.is_fd for f in frames)  # classic frames, padded
    cfs = [f.timestamp_ns for f in frames if f.data[0] >> 4 == 2]
    gap_ns = {0: 0, 1: 1_000_000, 0xF1: 100_000}[stmin]
    # separation between frame ends >= STmin (a frame lasts the same each time)
    assert all(b - a >= gap_ns for a, b in itertools.pairwise(cfs))
    if stmin == 0 and blocksize != 1:  # back to back: the ECU sends them at once
        assert all(b - a < 400_000 for a, b in itertools.pairwise(cfs))


def test_a_lost_consecutive_frame_aborts_the_reception(bench: tuple[Network, PythonNode]) -> None:
    net, tester = bench
    vin = b"\x2e\xf1\x90" + b"WVWZZZ1JZXW000001"  # 20 bytes: FF + 2 CFs
    send(net, tester, b"\x10\x03")  # extended session first
    send(net, tester, bytes([0x10, len(vin)]) + vin[:6])
    assert answers(tester)[-1].data[:3] == b"\x30\x08\x00"  # CTS, BS 8, STmin 0
    before = net.now_ns
    send(net, tester, b"\x22" + vin[13:20])  # SN 2: SN 1 was lost
    send(net, tester, b"\x21" + vin[6:13])  # too late: no reception in progress
    net.run_for(ms=100)
    assert answers(tester, before) == []  # no response to a message never received whole
    send(net, tester, b"\x03\x22\xf1\x90")  # the next request is served
    net.run_for(ms=10)
    assert answers(tester, before)[0].data[:5] == b"\x10\x14\x62\xf1\x90"


def test_the_ecu_times_out_waiting_for_consecutive_frames(
    bench: tuple[Network, PythonNode],
) -> None:
    net, tester = bench
    send(net, tester, b"\x10\x03")
    vin = b"\x2e\xf1\x90" + b"WVWZZZ1JZXW000001"
    send(net, tester, bytes([0x10, len(vin)]) + vin[:6])
    net.run_for(ms=1_100)  # N_Cr is 1000 ms
    before = net.now_ns
    send(net, tester, b"\x21" + vin[6:13])
    send(net, tester, b"\x22" + vin[13:20])
    net.run_for(ms=100)
    assert answers(tester, before) == []


def test_the_ecu_gives_up_a_response_without_flow_control(
    bench: tuple[Network, PythonNode],
) -> None:
    net, tester = bench
    send(net, tester, b"\x02\x19\x0a")
    first = answers(tester)[-1]
    assert first.data[:2] == b"\x10\x1b"  # a 27-byte answer begins; no flow control comes
    net.run_for(ms=1_100)  # N_Bs is 1000 ms
    before = net.now_ns
    send(net, tester, b"\x02\x3e\x00")
    net.run_for(ms=10)
    assert [f.data[:3] for f in answers(tester, before)] == [b"\x02\x7e\x00"]


def test_the_tester_times_out_in_virtual_time(bench: tuple[Network, PythonNode]) -> None:
    net, _ = bench
    with uds_client(net, fd=False, config={"p2_timeout": 0.2}) as client:
        client.change_session(3)
        net.ecus["ELC"].power_off()
        start = net.now_ns
        with pytest.raises(TimeoutException):  # a multi-frame request: no flow control
            client.write_data_by_identifier(0xF190, "WVWZZZ1JZXW000001")
        # can-isotp's N_Bs (1 s) ends the transmission, then udsoncan's P2: the 50 ms the
        # ECU announced in its session response (use_server_timing), not the configured 0.2 s
        assert 1.05e9 <= net.now_ns - start < 1.06e9


def test_a_request_longer_than_the_buffer_gets_an_overflow(
    bench: tuple[Network, PythonNode],
) -> None:
    net, tester = bench
    send(net, tester, bytes([0x10, 200]) + b"\x2e\xf1\x90\x00\x00\x00")
    assert answers(tester)[-1].data[:3] == b"\x32\x08\x00"  # FC overflow
