"""The LIN bus in virtual time: headers, responses, their timing, errors, schedule tables."""

from __future__ import annotations

import pytest

from harness.frames.lin import checksum, max_frame_ns, nominal_ns, protected_id
from harness.network import Network
from harness.network.lin import LinBus, LinNode, ScheduleTable


def cluster(bitrate: int = 19_200) -> tuple[Network, LinBus, LinNode, LinNode]:
    net = Network()
    lin = net.lin_bus("lin0", bitrate)
    return net, lin, lin.node("switch"), lin.node("lamp")


def test_a_response_ends_after_header_and_bytes_at_the_bit_rate() -> None:
    net, lin, switch, lamp = cluster()
    switch.publish(0x10, b"\x01\x02")
    net.run_for(ms=1)
    lin.send_header(0x10)
    net.run_for(ms=10)
    (record,) = lamp.received
    assert record.status == "ok" and record.data == b"\x01\x02" and record.publisher == "switch"
    assert record.pid == protected_id(0x10) == 0x50
    assert record.checksum == checksum(b"\x01\x02", 0x50)  # enhanced: the PID counts
    # header 34 bits, then (2 data + checksum) x 10 bits, at 19.2 kbit/s
    assert record.timestamp_ns == 1_000_000 + nominal_ns(2, 19_200)
    assert switch.received == [record]  # the publisher hears its own frame too


def test_no_response_collision_and_checksum_errors_are_statuses() -> None:
    net, lin, switch, lamp = cluster(10_400)
    lin.send_header(0x20)  # nobody publishes 0x20
    net.run_for(ms=20)
    assert lamp.received[-1].status == "no response"
    assert lamp.received[-1].timestamp_ns == max_frame_ns(8, 10_400)  # 1.4 x nominal
    switch.publish(0x21, b"\x01")
    lamp.publish(0x21, b"\x02")  # an event-triggered frame both have news for
    lin.send_header(0x21)
    net.run_for(ms=20)
    assert lamp.received[-1].status == "collision"
    lamp.responders.pop(0x21)
    lin.inject(0x21, "checksum")
    lin.send_header(0x21)
    net.run_for(ms=20)
    bad = lamp.received[-1]
    assert bad.status == "checksum error" and bad.checksum == checksum(b"\x01", 0x61) ^ 0xFF
    lin.send_header(0x21)
    net.run_for(ms=20)
    assert lamp.received[-1].status == "ok"  # the fault was for one frame


def test_a_schedule_table_sends_each_header_at_its_slot() -> None:
    net, lin, switch, lamp = cluster()
    switch.publish(0x10, b"\x01")
    lamp.publish(0x11, bytes(8))
    table = ScheduleTable(lin, [(0x10, 10.0), (0x11, 15.0)])
    table.start()
    net.run_for(ms=100)
    starts = [r.start_ns for r in lin.records]
    assert starts[:4] == [0, 10_000_000, 25_000_000, 35_000_000]
    assert [r.frame_id for r in lin.records[:4]] == [0x10, 0x11, 0x10, 0x11]
    assert table.overruns == 0
    short = ScheduleTable(lin, [(0x11, 1.0)])  # an 8-byte frame takes 6.5 ms: slots overrun
    table.stop()
    short.start()
    net.run_for(ms=20)
    assert short.overruns > 0


def test_lin_rates_and_names_are_checked() -> None:
    net = Network()
    with pytest.raises(ValueError, match=r"LIN runs at 1,000 to 20,000 bit/s .*, not 500000"):
        net.lin_bus("lin0", 500_000)
    net.lin_bus("lin0")
    with pytest.raises(ValueError, match="already has a bus named 'lin0'"):
        net.lin_bus("lin0")


def test_a_wrong_sync_byte_is_a_sync_error_and_no_slave_answers() -> None:
    net, lin, switch, lamp = cluster()
    switch.publish(0x10, b"\x01")
    lin.send_header(0x10, sync=0x54)
    net.run_for(ms=20)
    (record,) = lamp.received
    assert (record.status, record.frame_id, record.data) == ("sync error", None, b"\x54")
    lin.send_header(0x10)
    net.run_for(ms=20)
    assert lamp.received[-1].status == "ok"
