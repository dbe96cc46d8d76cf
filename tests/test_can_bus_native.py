"""The native CAN bus (network/bus.c) against the Python bus (network/can.py), the reference.

Both get the same random traffic: Python nodes with TX FIFOs and TX queues sending every kind
of frame at random times (from events on the same clock, so ties with the bus's own events
are exercised), some frames queued ahead of the time they are requested at (as the trace
player queues them), a deaf node (a pure source), a node that answers what it hears from
inside the delivery, injected error frames for all IDs or a few, and a Python event at the
very moment of some deliveries. Every delivery and confirmation (time, node, frame, the
order of all of them) and the statistics must be the same.
"""

from __future__ import annotations

from typing import Any

from can_strategies import can_frames
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.clock import VirtualClock
from harness.frames.can import CanFrame
from harness.frames.ids import id_key
from harness.network.can import CanBus, PythonNode
from harness.network.can_native import NativeCanBus, NativeNetClock

NS = 1_000_000_000
Log = list[tuple[Any, ...]]

# send times on a coarse grid, so that frames on two buses start and end together
times = st.integers(0, 400_000) | st.integers(0, 8).map(lambda k: k * 50_000)
# (node, when queued, frame, how much later it is requested at: None, now)
sends = st.lists(st.tuples(st.integers(0, 3), times, can_frames(),
                           st.none() | st.integers(0, 100_000)), max_size=30)  # fmt: skip
errors = st.lists(st.tuples(st.integers(0, 400_000), st.integers(1, 3),
                            st.none() | st.lists(st.integers(0, 0x7FF), max_size=3)),
                  max_size=3)  # fmt: skip


def run(native: bool, rates: tuple[int, int], orders: list[str], traffic: list[Any],
        faults: list[Any], ticks: list[int], n_buses: int) -> tuple[Log, Any]:  # fmt: skip
    """Nodes take turns on `n_buses` buses of one clock (two buses: their events tie too)."""
    buses: list[CanBus]
    if native:
        net = NativeNetClock(NS)
        clock = net.clock
        buses = [NativeCanBus(f"can{i}", net, *rates) for i in range(n_buses)]
    else:
        clock = VirtualClock(NS)
        buses = [CanBus(f"can{i}", clock, *rates) for i in range(n_buses)]
    bus = buses[0]
    log: Log = []
    nodes = [PythonNode(f"n{i}", buses[i % n_buses], order, hears=i != 1)
             for i, order in enumerate(orders)]  # fmt: skip
    answering = PythonNode("answer", bus)
    for node in (*nodes, answering):
        node.listeners.append(lambda f, n=node.name: log.append((clock.cycles, n, "rx", f)))
        node.sent_listeners.append(lambda f, n=node.name: log.append((clock.cycles, n, "tx", f)))

    def answer(frame: CanFrame) -> None:
        if frame.arbitration_id % 3 == 0 and len(answering.sent) < 10:
            answering.send(CanFrame(0x7FF - frame.arbitration_id % 0x100, b"\x01"))

    answering.listeners.append(answer)
    for node_index, at, frame, later in traffic:
        node = nodes[node_index % len(nodes)]
        request_at = None if later is None else at + later
        clock.schedule_at(at, lambda n=node, f=frame, r=request_at: n.send(f, r))
    for at, count, ids in faults:
        clock.schedule_at(at, lambda c=count, i=ids: bus.inject_errors(c, i))
    for at in ticks:  # Python events, some at the moments of bus events
        clock.schedule_at(at, lambda at=at: log.append((clock.cycles, "tick", at)))
    for end in (150_000, 2_000_000, 20_000_000):
        clock.advance_to(end)
        log.append(("stop", end, clock.next_deadline()))
    stats = [(s.frames, s.errors, s.busy_ns, dict(s.per_id)) for s in (b.stats for b in buses)]
    return log, (stats, [(n.sent, n.received) for n in nodes], answering.received)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([(500_000, None), (500_000, 2_000_000), (1_000_000, 5_000_000)]),
    st.lists(st.sampled_from(["fifo", "priority"]), min_size=1, max_size=4),
    sends,
    errors,
    st.lists(st.integers(0, 400_000), max_size=5),
    st.integers(1, 2),
)
def test_the_native_bus_carries_traffic_as_the_python_one(
    rates: tuple[int, int], orders: list[str], traffic: list[Any], faults: list[Any],
    ticks: list[int], n_buses: int,
) -> None:  # fmt: skip
    python = run(False, rates, orders, traffic, faults, ticks, n_buses)
    # Python events at the exact times the reference delivered frames: ties in both orders
    tied = sorted({entry[0] for entry in python[0] if entry[2:3] == ("rx",)})[:4]
    python = run(False, rates, orders, traffic, faults, ticks + tied, n_buses)
    native = run(True, rates, orders, traffic, faults, ticks + tied, n_buses)
    assert native == python


def test_a_node_that_raises_under_the_native_bus_raises_to_the_caller() -> None:
    net = NativeNetClock(NS)
    bus = NativeCanBus("can0", net)
    sender, rx = PythonNode("tx", bus), PythonNode("rx", bus)
    rx.listeners.append(lambda f: 1 / 0)
    sender.send(CanFrame(0x100))
    try:
        net.clock.advance_to(1_000_000)
    except ZeroDivisionError:
        pass
    else:
        raise AssertionError("the listener's exception was lost")
    assert len(rx.received) == 1  # delivered before the listener raised, as in the reference


def test_per_id_counts_survive_more_frames_than_the_native_log_holds() -> None:
    net = NativeNetClock(NS)
    bus = NativeCanBus("can0", net, 1_000_000)
    tx, _ = PythonNode("tx", bus, keep=False), PythonNode("rx", bus, keep=False)
    for i in range(1000):
        tx.send(CanFrame(0x100 + i % 2, bytes(1)))
    net.clock.advance_to(NS)
    assert bus.stats.frames == 1000
    assert bus.stats.per_id == {id_key(0x100, False): 500, id_key(0x101, False): 500}


def test_two_buses_with_events_at_the_same_instants_keep_the_reference_order() -> None:
    frames = [CanFrame(0x123, bytes(8)), CanFrame(0x321, bytes(3), is_fd=True, brs=True)]
    traffic = [(node, at, f, None) for at in (1_000, 1_000, 90_000) for f in frames
               for node in (1, 0)]  # fmt: skip
    args = ((500_000, 2_000_000), ["fifo", "priority"], traffic, [], [1_000], 2)
    python, native = run(False, *args), run(True, *args)
    sent = [entry for entry in python[0] if entry[2:3] == ("tx",)]
    assert len({entry[0] for entry in sent}) < len(sent)  # deliveries on both buses coincide
    assert native == python
