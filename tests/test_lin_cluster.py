"""The project LDF driving a LIN bus with no ECU: the harness plays master and slaves, so the
LDF's schedule, signal encodings, event-triggered frames, faults and sleep can be checked on
their own. (With the light controller as master: test_elc_lin.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.frames.lin import checksum, nominal_ns, protected_id
from harness.ldf import Ldf, LdfError
from harness.lin_testing import LinCluster, write_records
from harness.network import Network


@pytest.fixture(scope="module")
def ldf() -> Ldf:
    return Ldf.load()


def cluster(ldf: Ldf) -> LinCluster:
    net = Network()
    net.lin_bus("lin0", ldf.bitrate)
    return LinCluster(net, ldf, emulated=())  # every node, the master too, is the harness's


def test_the_normal_table_runs_at_its_slot_delays_with_initial_values(ldf: Ldf) -> None:
    lin = cluster(ldf)
    lin.run_schedule("NormalTable")
    frames = lin.expect_schedule("NormalTable", cycles=3, tolerance_ms=0)
    assert [f.frame_id for f in frames[:3]] == [0x10, 0x20, 0x23]
    assert [f.start_ns for f in frames[:4]] == [0, 10_000_000, 20_000_000, 30_000_000]
    switch = lin.decoded("SwitchStatus")[0]
    assert switch.signals["TurnStalk"] == "Off" and switch.signals["ScsSupply"] == 0
    assert switch.timestamp_ns == nominal_ns(2, 19_200)  # a whole frame, from the header on
    command = lin.decoded("LampCommand")[0]
    assert command.record.publisher == "ELC" and command.signals["LampBrightness"] == 100.0
    # no lamp has news: the event-triggered frame stays unanswered, which is not an error
    assert {r.status for r in lin.bus.records if r.frame_id == 0x23} == {"no response"}


def test_a_published_signal_goes_out_with_its_encoding(ldf: Ldf) -> None:
    lin = cluster(ldf)
    lin.run_schedule("NormalTable")
    data = lin.publish("SwitchStatus", TurnStalk="Left", ScsSupply=13.5)
    assert data == bytes([0xC1, 135])  # logical 1, physical 13.5 V at 0.1 V/bit; unused bits 1
    seen = lin.expect("SwitchStatus", within_ms=40, TurnStalk="Left")
    assert seen.signals["ScsSupply"] == 13.5
    net = Network()
    net.lin_bus("lin0")
    slaves_only = LinCluster(net, ldf)  # by default an ECU plays the master
    with pytest.raises(ValueError, match="LampCommand is published by ELC, not by a harness"):
        slaves_only.publish("LampCommand", LowBeamOn=1)


def test_a_lamp_with_news_answers_the_event_triggered_frame_with_its_pid(ldf: Ldf) -> None:
    lin = cluster(ldf)
    lin.run_schedule("NormalTable")
    lin.publish("LampLeftStatus", LampLeftFault="Fault", LampLeftTemp=85)
    lin.network.run_for(ms=35)
    (event,) = [r for r in lin.bus.records if r.frame_id == 0x23 and r.status == "ok"]
    assert event.data == bytes([protected_id(0x21), 0xFD, 85 + 40]) and event.publisher == "LAMP_L"
    (carried,) = lin.decoded("LampLeftStatus")  # the event's answer, as the frame it carries
    assert carried.record == event and carried.signals["LampLeftFault"] == "Fault"
    assert [d.name for d in lin.decoded()] == ["SwitchStatus", "LampCommand", "LampLeftStatus",
                                               "SwitchStatus"]  # fmt: skip
    lin.network.run_for(ms=30)  # sent: no longer news
    assert [r.status for r in lin.bus.records if r.frame_id == 0x23][-1] == "no response"
    # both lamps with news at once: their answers collide on the wire, and the master runs
    # the collision-resolving table, which polls each lamp
    lin.publish("LampLeftStatus", LampLeftTemp=90)
    lin.publish("LampRightStatus", LampRightFault="Fault")
    lin.network.run_for(ms=30)
    records = lin.bus.records
    collision = next(i for i, r in enumerate(records) if r.status == "collision")
    assert records[collision].frame_id == 0x23
    assert lin.nodes["LAMP_L"].bit_errors + lin.nodes["LAMP_R"].bit_errors >= 1
    lin.network.run_for(ms=40)
    after = [(r.frame_id, r.status) for r in records[collision + 1:collision + 4]]
    assert after == [(0x21, "ok"), (0x22, "ok"), (0x10, "ok")]  # then NormalTable again
    assert lin.decoded("LampRightStatus")[-1].signals["LampRightFault"] == "Fault"
    lin.network.run_for(ms=30)  # the news went out: the event frame is quiet again
    assert [r.status for r in records if r.frame_id == 0x23][-1] == "no response"


def test_node_names_are_the_ldfs_alone(ldf: Ldf, tmp_path) -> None:
    text = Path(ldf.source).read_text().replace("ELC", "master").replace("SCS", "cluster")
    path = tmp_path / "names.ldf"
    path.write_text(text)
    lin = cluster(Ldf.load(path))  # the harness's own names cannot clash with these
    lin.run_schedule("NormalTable")
    lin.network.run_for(ms=25)
    assert [r.publisher for r in lin.bus.records[:2]] == ["cluster", "master"]


def test_an_unsupported_schedule_table_is_refused_when_run(ldf: Ldf, tmp_path) -> None:
    slot = "    SlaveResp delay 10 ms;"
    assign = f"{slot}\n    AssignNAD {{ LAMP_L }} delay 20 ms;"
    text = Path(ldf.source).read_text().replace(slot, assign)
    path = tmp_path / "configures.ldf"
    path.write_text(text)
    lin = cluster(Ldf.load(path))
    with pytest.raises(LdfError, match=r"configures\.ldf:\d+:5: schedule table DiagTable, "
                                       r"entry 3: AssignNAD is not supported"):  # fmt: skip
        lin.run_schedule("DiagTable")
    lin.run_schedule("NormalTable")  # the others run


def test_j2602s_10417_bit_s_is_a_lin_rate() -> None:
    net = Network()
    assert net.lin_bus("lin0", 10_417).bitrate == 10_417


@pytest.mark.parametrize(("fault", "status"), [
    ("no response", "no response"), ("checksum", "checksum error"),
    ("partial", "incomplete response"), ("framing", "framing error"),
    ("collision", "collision"), ("parity", "parity error"),
])  # fmt: skip
def test_each_injected_fault_is_the_frames_status_once(ldf: Ldf, fault: str, status: str) -> None:
    lin = cluster(ldf)
    lin.inject("SwitchStatus", fault)
    lin.run_schedule("NormalTable")
    lin.network.run_for(ms=65)
    switch = [r for r in lin.bus.records if r.frame_id == 0x10]
    assert [r.status for r in switch] == [status, "ok", "ok"]


def test_go_to_sleep_silences_the_slaves_until_a_wake_up_and_100_ms(ldf: Ldf) -> None:
    lin = cluster(ldf)
    lin.bus.go_to_sleep()
    lin.network.run_for(ms=20)
    assert lin.bus.records[-1].is_sleep_command and lin.bus.asleep
    lin.bus.send_header(0x10)
    lin.network.run_for(ms=20)
    # the header's break is a dominant phase longer than 150 us: it wakes the slaves, but
    # they answer only 100 ms later
    assert [r.status for r in lin.bus.records[-2:]] == ["wake-up", "no response"]
    lin.network.run_for(ms=100)
    lin.bus.send_header(0x10)
    lin.network.run_for(ms=20)
    assert lin.bus.records[-1].status == "ok"


def test_four_seconds_of_silence_put_the_slaves_to_sleep(ldf: Ldf) -> None:
    lin = cluster(ldf)
    lin.network.run_for(s=4)
    assert lin.bus.asleep
    lin.wake_up("SCS")  # a slave's wake-up signal
    lin.network.run_for(ms=5)
    assert lin.bus.records[-1].status == "wake-up" and not lin.bus.asleep


def test_a_recording_dump_is_one_readable_line_per_frame(ldf: Ldf, tmp_path) -> None:
    lin = cluster(ldf)
    lin.run_schedule("NormalTable")
    lin.network.run_for(ms=26)  # the event-triggered frame times out at 20 + 5.2 ms
    out = tmp_path / "lin0.txt"
    write_records(lin.bus.records, out)
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# LIN recording of lin0")
    assert lines[1].split() == ["3.333", "ms", "id", "0x10", "pid", "0x50", "c0", "00", "cs",
                                "EE", "ok", "SCS", "[from", "0.000", "ms]"]  # fmt: skip
    assert len(lines) == 1 + 3 and "no response  -  [from 20.000 ms]" in lines[3]


def test_diagnostic_frames_carry_a_request_and_one_slaves_response(ldf: Ldf) -> None:
    lin = cluster(ldf)
    read_by_id = bytes([0x02, 0x06, 0xB2, 0x00, 0xFF, 0x7F, 0xFF, 0xFF])  # NAD 2, ReadByIdentifier
    lin.master_request(read_by_id)
    lin.network.run_for(ms=15)
    lin.slave_response("LAMP_L", bytes([0x02, 0x06, 0xF2, 0x1C, 0x1E, 0x02, 0x00, 0x00]))
    lin.bus.send_header(0x3D)
    lin.network.run_for(ms=15)
    lin.bus.send_header(0x3D)  # answered once: then nobody
    lin.network.run_for(ms=15)
    request, response, nothing = lin.bus.records
    assert (request.status, request.data, request.publisher) == ("ok", read_by_id,
                                                                 "harness master")  # fmt: skip
    assert request.checksum == checksum(read_by_id)  # classic: the protected ID not summed
    assert (response.status, response.publisher, response.data[2]) == ("ok", "LAMP_L", 0xF2)
    assert response.checksum == checksum(response.data)
    assert nothing.status == "no response"


def test_a_wake_up_pulse_does_not_hold_up_the_master(ldf: Ldf) -> None:
    lin = cluster(ldf)
    lin.bus.go_to_sleep()
    lin.network.run_for(ms=20)
    lin.wake_up("SCS")  # a break with no sync after it
    lin.network.run_for(ms=150)
    assert lin.bus.idle
    lin.run_schedule("NormalTable")
    lin.network.run_for(ms=25)
    assert [r.status for r in lin.bus.records[-2:]] == ["ok", "ok"]
    assert lin._schedule is not None and lin._schedule.overruns == 0


def test_a_break_shorter_than_11_bits_starts_no_header(ldf: Ldf) -> None:
    lin = cluster(ldf)
    lin.bus.send_header(0x10, break_bits=8)  # a 0x00 with a framing error, not a break
    lin.network.run_for(ms=20)
    assert lin.bus.records == []  # nobody took it for a header, nobody answered


@pytest.mark.parametrize("stalk", ["Off", "Left", "Right"])
def test_an_injected_collision_spoils_the_frame_whatever_its_data(ldf: Ldf, stalk: str) -> None:
    lin = cluster(ldf)
    lin.publish("SwitchStatus", TurnStalk=stalk)
    lin.inject("SwitchStatus", "collision")
    lin.bus.send_header(0x10)
    lin.network.run_for(ms=20)
    (record,) = lin.bus.records
    assert record.status == "collision" and record.publisher == "SCS,SCS'"
    assert record.checksum != checksum(record.data, record.pid)  # what every receiver saw


def test_fault_arguments_and_targets_are_checked(ldf: Ldf) -> None:
    lin = cluster(ldf)
    with pytest.raises(ValueError, match=r"partial response keeps 1\.\.2 of them, not 3"):
        lin.inject("SwitchStatus", "partial", keep=3)
    with pytest.raises(ValueError, match=r"got count=0, keep=1"):
        lin.inject("SwitchStatus", "checksum", count=0)
    net = Network()
    net.lin_bus("lin0")
    slaves_only = LinCluster(net, ldf)  # the ECU publishes LampCommand: no harness answer
    with pytest.raises(ValueError, match=r"no harness node answers frame 0x20: 'checksum' acts"):
        slaves_only.inject("LampCommand", "checksum")
    slaves_only.inject("LampCommand", "parity")  # on the wire: whoever sends it


def test_the_cluster_refuses_what_cannot_be_meant(ldf: Ldf) -> None:
    net = Network()
    net.lin_bus("lin0", 9_600)
    with pytest.raises(ValueError, match=r"lin0 runs at 9600 bit/s, .* at 19200 bit/s"):
        LinCluster(net, ldf)
    net.lin_bus("lin1")
    ecu_is_master = LinCluster(net, ldf, "lin1")
    with pytest.raises(ValueError, match=r"an ECU plays the master \(ELC\)"):
        ecu_is_master.run_schedule("NormalTable")
    with pytest.raises(ValueError, match=r"LampFaultEvent is an event-triggered frame: expect "
                                         r"the frame it carries \(LampLeftStatus or "):  # fmt: skip
        ecu_is_master.expect("LampFaultEvent", within_ms=10)
    with pytest.raises(ValueError, match="1 cycle or more"):
        ecu_is_master.expect_schedule("NormalTable", cycles=0)


def test_a_master_request_slot_carries_a_waiting_request_or_stays_silent(ldf: Ldf) -> None:
    lin = cluster(ldf)
    lin.run_schedule("DiagTable")
    lin.network.run_for(ms=40)  # nothing to ask: no MasterReq header; SlaveResp unanswered
    assert {r.frame_id for r in lin.bus.records} == {0x3D}
    lin.master_request(bytes([0x01, 0x06, 0xB2, 0x00, 0xFF, 0x7F, 0xFF, 0xFF]))
    lin.network.run_for(ms=30)  # the next MasterReq slot, at 60 ms
    (request,) = [r for r in lin.bus.records if r.frame_id == 0x3C]
    assert request.status == "ok" and request.data[0] == 0x01


def test_a_frame_the_ldf_lacks_stays_in_the_records_undecoded(ldf: Ldf) -> None:
    lin = cluster(ldf)
    lin.bus.node("stranger").publish(0x30, b"\x01")
    lin.bus.send_header(0x30)
    lin.network.run_for(ms=20)
    (record,) = lin.bus.records
    assert (record.frame_id, record.status, record.publisher) == (0x30, "ok", "stranger")
    assert lin.decoded() == []
