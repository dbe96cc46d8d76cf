"""python-can's own tools on a simulated bus: the `harness` interface, unchanged clients."""

from __future__ import annotations

import time
from pathlib import Path

import can
import pytest

from harness.frames.can import CanFrame
from harness.network.can import PythonNode
from harness.network.network import Network


@pytest.fixture
def net() -> Network:
    n = Network()
    n.can_bus("can0", bitrate=500_000, data_bitrate=2_000_000)
    return n


def test_interface_is_found_through_the_entry_point(net: Network) -> None:
    with can.Bus(interface="harness", channel="can0", network=net) as bus:
        assert "can0" in bus.channel_info


def test_send_and_receive_with_virtual_timestamps(net: Network) -> None:
    with (
        can.Bus(interface="harness", channel="can0", network=net) as a,
        can.Bus(interface="harness", channel="can0", network=net, drive=True) as b,
    ):
        a.send(can.Message(arbitration_id=0x123, data=[1, 2, 3], is_extended_id=False))
        msg = b.recv(timeout=0.01)
        assert (
            msg is not None and msg.arbitration_id == 0x123 and bytes(msg.data) == b"\x01\x02\x03"
        )
        duration = net.bus("can0").duration_ns(CanFrame(0x123, b"\x01\x02\x03"))
        assert msg.timestamp == pytest.approx((duration - 3 * 2000) / 1e9)  # end of EOF
        fd = can.Message(arbitration_id=0x18DA00F1, data=bytes(64), is_fd=True, bitrate_switch=True)
        a.send(fd)
        got = b.recv(timeout=0.01)
        assert got is not None and got.is_fd and got.bitrate_switch and len(got.data) == 64


def test_driving_endpoint_times_out_in_virtual_time(net: Network) -> None:
    with can.Bus(interface="harness", channel="can0", network=net, drive=True) as bus:
        start = time.perf_counter()
        assert bus.recv(timeout=5.0) is None  # 5 s of virtual time, not of wall time
        assert time.perf_counter() - start < 1.0
        assert net.now_ns == 5_000_000_000
        assert bus.recv() is None  # nothing could ever arrive: no eternal block


def test_notifier_and_asc_logger_work_unchanged(net: Network, tmp_path: Path) -> None:
    log = tmp_path / "trace.asc"
    node = PythonNode("ecu", net.bus("can0"))
    with can.Bus(interface="harness", channel="can0", network=net) as bus:
        logger = can.Logger(str(log))
        notifier = can.Notifier(bus, [logger], timeout=0.01)
        for i in range(5):
            node.send(CanFrame(0x100 + i, bytes([i] * 8)))
            net.run_for(ms=10)
        deadline = time.monotonic() + 5
        while logger.file.tell() == 0 or log.read_text().count(" Rx ") < 5:
            assert time.monotonic() < deadline, "notifier did not deliver the frames"
            time.sleep(0.01)
        notifier.stop()
        logger.stop()
    frames = list(can.ASCReader(str(log)))
    assert [m.arbitration_id for m in frames] == [0x100 + i for i in range(5)]
    # Sent 10 ms apart in virtual time, each received at its own end of frame; the ASC
    # writer makes times relative to the first frame and keeps microseconds.
    bus_ = net.bus("can0")
    ends = [
        i * 0.010 + bus_.duration_ns(CanFrame(0x100 + i, bytes([i] * 8))) / 1e9 for i in range(5)
    ]
    expected = [t - ends[0] for t in ends]
    assert [m.timestamp for m in frames] == pytest.approx(expected, abs=1.5e-6)


def test_unknown_channel_and_missing_network(net: Network) -> None:
    with pytest.raises(can.CanInitializationError, match="no bus named 'can9'"):
        can.Bus(interface="harness", channel="can9", network=net)
    with pytest.raises(can.CanInitializationError, match="needs network="):
        can.Bus(interface="harness", channel="can0")


def test_invalid_message_is_a_clear_error(net: Network) -> None:
    with (
        can.Bus(interface="harness", channel="can0", network=net) as bus,
        pytest.raises(can.CanOperationError, match="classic CAN frames carry at most 8 bytes"),
    ):
        bus.send(can.Message(arbitration_id=1, data=bytes(12), is_fd=False))
