"""The CAN bus in virtual time: arbitration, durations, delivery timestamps, bus load."""

from __future__ import annotations

import pytest

from harness.clock import VirtualClock
from harness.errors import VirtualTimeout
from harness.frames.can import CanFrame
from harness.network.can import CanBus, PythonNode
from harness.network.can_native import NativeCanBus, NativeNetClock
from harness.network.network import Network

KIND = "python"


@pytest.fixture(autouse=True, params=["python", "native"])
def bus_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test on the Python bus (the reference) and on the native one (bus.c)."""
    global KIND
    KIND = request.param
    monkeypatch.setenv("HARNESS_NATIVE", "1" if KIND == "native" else "0")  # for Networks


def bus(bitrate: int = 500_000, data_bitrate: int | None = None) -> CanBus:
    if KIND == "native":
        return NativeCanBus("can0", NativeNetClock(1_000_000_000), bitrate, data_bitrate)
    return CanBus("can0", VirtualClock(1_000_000_000), bitrate, data_bitrate)


def test_lowest_id_wins_when_nodes_start_together() -> None:
    b = bus()
    a, c, listener = PythonNode("a", b), PythonNode("c", b), PythonNode("listener", b)
    a.send(CanFrame(0x300, b"\x01"))
    c.send(CanFrame(0x100, b"\x02"))
    b.clock.advance_to(10_000_000)
    assert [f.arbitration_id for f in listener.received] == [0x100, 0x300]
    assert a.received == [listener.received[0]] and c.received == [listener.received[1]]


def test_frames_follow_back_to_back_with_exact_durations() -> None:
    b = bus(1_000_000)
    sender, rx = PythonNode("tx", b), PythonNode("rx", b)
    frames = [CanFrame(0x2AA, bytes([0x55] * 8)) for _ in range(3)]
    for f in frames:
        sender.send(f)
    b.clock.advance_to(1_000_000)
    duration = b.duration_ns(frames[0])
    # Received at the end of EOF; the next frame starts after the 3-bit intermission.
    assert [f.timestamp_ns for f in rx.received] == [duration * k - 3_000 for k in (1, 2, 3)]
    assert rx.received[0].channel == "can0"
    assert sender.sent == rx.received


def test_a_waiting_node_arbitrates_after_the_current_frame() -> None:
    b = bus()
    a, c, rx = PythonNode("a", b), PythonNode("c", b), PythonNode("rx", b)
    a.send(CanFrame(0x700, bytes(8)))
    b.clock.advance_to(10_000)  # a's frame is on the bus
    c.send(CanFrame(0x001))  # higher priority, but it must wait: no preemption on CAN
    a.send(CanFrame(0x002))
    b.clock.advance_to(10_000_000)
    assert [f.arbitration_id for f in rx.received] == [0x700, 0x001, 0x002]


def test_priority_tx_queue_and_fifo() -> None:
    b = bus()
    fifo, prio, rx = PythonNode("fifo", b), PythonNode("prio", b, "priority"), PythonNode("rx", b)
    for ident in (0x30, 0x10, 0x20):
        fifo.send(CanFrame(0x400 + ident))
        prio.send(CanFrame(0x500 + ident))
    b.clock.advance_to(100_000_000)
    ids = [f.arbitration_id for f in rx.received]
    assert ids == [0x430, 0x410, 0x420, 0x510, 0x520, 0x530]


def test_fd_data_phase_runs_at_the_data_rate() -> None:
    slow, fast = bus(500_000, 2_000_000), bus(500_000, 2_000_000)
    frame = CanFrame(0x123, bytes(64), is_fd=True)
    assert fast.duration_ns(CanFrame(0x123, bytes(64), is_fd=True, brs=True)) < (
        slow.duration_ns(frame) / 2
    )


def test_bus_load_of_a_saturated_bus() -> None:
    b = bus(1_000_000)
    tx, _rx = PythonNode("tx", b), PythonNode("rx", b)
    for _ in range(2000):
        tx.send(CanFrame(0x2AA, bytes([0x55] * 8)))
    b.clock.advance_to(100_000_000)  # 0.1 s: ~900 frames fit
    assert 880 <= b.stats.frames <= 910
    assert b.stats.load(100_000_000) == pytest.approx(1.0, abs=0.01)
    assert b.stats.per_id[0x2AA] == b.stats.frames


def test_bus_needs_a_nanosecond_clock() -> None:
    with pytest.raises(ValueError, match="nanosecond clock"):
        CanBus("can0", VirtualClock(120_000_000))
    b = bus()
    PythonNode("a", b)
    with pytest.raises(ValueError, match="already attached"):
        PythonNode("a", b)


def test_network_runs_until_a_frame_arrives() -> None:
    net = Network()
    can0 = net.can_bus("can0", bitrate=1_000_000)
    tx, rx = PythonNode("tx", can0), PythonNode("rx", can0)
    net.clock.schedule_at(2_000_000, lambda: tx.send(CanFrame(0x10, b"\x01")))
    t = net.run_until(lambda: bool(rx.received), timeout_ms=5)
    assert t == rx.received[0].timestamp_ns / 1e6
    assert 2.0 < t < 2.1
    with pytest.raises(VirtualTimeout, match="within 1 ms"):
        net.run_until(lambda: len(rx.received) > 1, timeout_ms=1)
    with pytest.raises(ValueError, match="already has a bus named 'can0'"):
        net.can_bus("can0")
    with pytest.raises(KeyError, match="no bus named 'can1'"):
        net.bus("can1")


def test_priority_node_removes_the_frame_that_was_actually_sent() -> None:
    b = bus()
    node, rx = PythonNode("prio", b, "priority"), PythonNode("rx", b)
    node.send(CanFrame(0x300, b"\x03"))
    b.clock.advance_to(20_000)  # 0x300 is on the bus now
    node.send(CanFrame(0x100, b"\x01"))  # more urgent, but arrives too late for this slot
    b.clock.advance_to(10_000_000)
    assert [f.arbitration_id for f in rx.received] == [0x300, 0x100]
    assert [f.data for f in node.sent] == [b"\x03", b"\x01"]
    assert not node.queue


def test_nodes_can_forget_what_they_saw() -> None:
    b = bus()
    tx, quiet = PythonNode("tx", b, keep=False), PythonNode("quiet", b, keep=False)
    seen: list[CanFrame] = []
    quiet.listeners.append(seen.append)
    tx.send(CanFrame(0x10))
    b.clock.advance_to(1_000_000)
    assert len(seen) == 1 and quiet.received == [] and tx.sent == []


def test_a_frame_queued_ahead_goes_out_at_its_request_time() -> None:
    b = bus(1_000_000)
    player, rx = PythonNode("player", b, hears=False), PythonNode("rx", b)
    early, later = CanFrame(0x100, bytes(8)), CanFrame(0x080, bytes(8))
    player.send(early, at_ns=60_000)
    player.send(later, at_ns=40_000)  # a FIFO: behind `early`, whatever its time
    rx.send(CanFrame(0x700))
    first_ends = b.duration_ns(CanFrame(0x700))
    assert first_ends < 60_000  # the bus is idle again when the player's frame is due
    b.clock.advance_to(first_ends)
    assert [f.arbitration_id for f in rx.sent] == [0x700] and not player.sent
    assert player.queue and player.pending_since() == 60_000
    b.clock.advance_to(1_000_000)
    assert [f.arbitration_id for f in rx.received] == [0x100, 0x080]
    assert rx.received[0].timestamp_ns == 60_000 + b.stamp_after_ns(early)
    assert not player.received  # deaf: it heard rx's frame and kept nothing


def test_a_priority_queue_offers_the_best_frame_already_requested() -> None:
    b = bus(1_000_000)
    node, rx = PythonNode("q", b, "priority"), PythonNode("rx", b)
    node.send(CanFrame(0x300), at_ns=10_000)
    node.send(CanFrame(0x100), at_ns=200_000)  # better, but requested later
    assert node.pending_since() == 10_000
    b.clock.advance_to(1_000_000)
    assert [f.arbitration_id for f in rx.received] == [0x300, 0x100]
    assert rx.received[1].timestamp_ns == 200_000 + b.stamp_after_ns(rx.received[1])


def test_a_listener_stops_the_advance_at_its_frame() -> None:
    net = Network()
    net.can_bus("can0", 1_000_000)
    tx, rx = PythonNode("tx", net.bus("can0")), PythonNode("rx", net.bus("can0"))
    for i in range(5):
        tx.send(CanFrame(0x100 + i, bytes(8)))
    rx.listeners.append(lambda f: net.stop() if f.arbitration_id == 0x102 else None)
    net.advance_to(10_000_000)
    assert net.now_ns == rx.received[-1].timestamp_ns  # stopped at the third frame's end
    assert [f.arbitration_id for f in rx.received] == [0x100, 0x101, 0x102]
    net.advance_to(10_000_000)  # the next advance runs to its end
    assert net.now_ns == 10_000_000 and len(rx.received) == 5


def test_a_frame_queued_ahead_competes_with_every_request_for_its_moment() -> None:
    """A Python event queued after the frame (a rest-bus tick, a tester) that sends at the
    very nanosecond the queued frame is due: both take part in that arbitration, and the
    lower ID wins, as on a real bus (the arbitration for a time to come runs last)."""
    b = bus(1_000_000)
    player, other, rx = PythonNode("player", b), PythonNode("other", b), PythonNode("rx", b)
    player.send(CanFrame(0x300, b"\x11"), at_ns=200_000)
    b.clock.schedule_at(200_000, lambda: other.send(CanFrame(0x100, b"\x22")))
    b.clock.advance_to(1_000_000)
    assert [f.arbitration_id for f in rx.received] == [0x100, 0x300]
    assert rx.received[0].timestamp_ns == 200_000 + b.stamp_after_ns(rx.received[0])


def test_a_disarmed_deadline_is_no_stop_for_the_network() -> None:
    net = Network()
    net.can_bus("can0", 1_000_000)
    tx, rx = PythonNode("tx", net.bus("can0")), PythonNode("rx", net.bus("can0"))
    deadline = net.clock.deadline(lambda: None)
    deadline.arm_at(1_000_000)
    deadline.disarm()
    tx.send(CanFrame(0x100), at_ns=2_000_000)
    assert net.step() and net.now_ns == 2_000_000  # not at the disarmed 1 ms (both paths)
    net.run_for(ms=1)
    assert len(rx.received) == 1


def test_a_node_class_of_its_own_is_asked_for_its_frames() -> None:
    class Held(PythonNode):
        held = True

        def offer(self, now_ns: int) -> CanFrame | None:
            return None if self.held else super().offer(now_ns)

    b = bus(1_000_000)
    node, rx = Held("held", b), PythonNode("rx", b)
    node.send(CanFrame(0x123))
    b.clock.advance_to(500_000)
    assert not rx.received  # its own offer() said no
    node.held = False
    b.request()
    b.clock.advance_to(1_000_000)
    assert [f.arbitration_id for f in rx.received] == [0x123]
