"""Rest-bus simulation from the DBC, with E2E counters and CRCs kept right, and faults."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from harness import Machine
from harness.dbc import Dbc, DbcError
from harness.e2e import CheckStatus, E2EReceiver
from harness.e2e.config import E2EConfigError, from_dbc, load
from harness.network import CanFrame, Network, PythonNode
from harness.restbus import Fault, RestBus

DBC = Dbc.load()
E2E = from_dbc(DBC)


def rig(elc: Path | None = None) -> tuple[Network, RestBus, PythonNode]:
    net = Network()
    net.can_bus("can0", 500_000, 2_000_000)
    if elc is not None:
        net.add_ecu("ELC", Machine(elc))
    spy = PythonNode("spy", net.bus("can0"))
    return net, RestBus(net, DBC, "ELC", e2e=E2E), spy


def frames(spy: PythonNode, ident: int) -> list[CanFrame]:
    return [f for f in spy.received if f.arbitration_id == ident]


def test_the_dbc_declares_vehiclestate_e2e_profile_1() -> None:
    profile = E2E["VehicleState"]
    assert (profile.crc_offset, profile.counter_offset, profile.data_id) == (7, 48, 0x100)  # type: ignore[union-attr]


def test_sends_what_the_ecu_receives_at_its_cycle_times() -> None:
    net, restbus, spy = rig()
    assert sorted(restbus.messages) == ["LightCommand", "VehicleState"]  # not the ELC's own
    net.run_for(ms=1000)
    state, command = frames(spy, 0x100), frames(spy, 0x120)
    assert len(state) == 100 and len(command) == 10
    gaps = {b.timestamp_ns - a.timestamp_ns for a, b in itertools.pairwise(state)}
    assert all(abs(g - 10_000_000) < 300_000 for g in gaps)  # arbitration may hold one a frame
    rx = E2EReceiver(E2E["VehicleState"])
    assert {rx.check(f.data) for f in state} == {CheckStatus.OK}
    counters = [DBC.decode(f).signals["VehicleState_Counter"] for f in state[:16]]  # type: ignore[union-attr]
    assert counters == [*range(15), 0]


def test_signal_values_change_while_running_and_the_ecu_reacts(firmware: dict[str, Path]) -> None:
    net, restbus, spy = rig(firmware["elc"])
    net.run_for(ms=50)
    restbus.set("VehicleState", BrakePedal="Pressed", Speed=80)
    net.run_for(ms=30)
    status = [DBC.decode(f) for f in frames(spy, 0x300)]
    assert status[-1].signals["BrakeLamp"] == 1  # type: ignore[union-attr]
    last = DBC.decode(frames(spy, 0x100)[-1])
    assert last.signals["Speed"] == 80 and last.signals["BrakePedal"] == "Pressed"  # type: ignore[union-attr]
    with pytest.raises(DbcError, match="Speed"):
        restbus.set("VehicleState", Speed=9999)
    with pytest.raises(KeyError, match="not a rest-bus message"):
        restbus.set("LightStatus", BrakeLamp=1)


@pytest.mark.parametrize(("fault", "expected"), [
    (Fault.CORRUPT_CRC, CheckStatus.ERROR),
    (Fault.WRONG_DATA_ID, CheckStatus.ERROR),
    (Fault.REPEAT_COUNTER, CheckStatus.REPEATED),
    (Fault.SKIP_COUNTER, CheckStatus.WRONG_SEQUENCE),
    (Fault.DROP, CheckStatus.WRONG_SEQUENCE),
])  # fmt: skip
def test_faults_show_in_the_receivers_check(fault: Fault, expected: CheckStatus) -> None:
    net, restbus, spy = rig()
    net.run_for(ms=55)
    restbus.inject("VehicleState", fault)
    net.run_for(ms=50)
    rx = E2EReceiver(E2E["VehicleState"])
    statuses = [rx.check(f.data) for f in frames(spy, 0x100)]  # frames at 0, 10, .., 100 ms
    assert len(statuses) == (10 if fault is Fault.DROP else 11)
    assert statuses.count(expected) == 1
    hit = statuses.index(expected)
    if expected is CheckStatus.ERROR:  # the next good frame is 2 counts past the last good one
        assert statuses[hit + 1] is CheckStatus.WRONG_SEQUENCE
        statuses[hit + 1] = CheckStatus.OK
    assert statuses.count(CheckStatus.OK) == len(statuses) - 1


def test_stop_delay_and_restart() -> None:
    net, restbus, spy = rig()
    net.run_for(ms=25)
    restbus.inject("VehicleState", Fault.DELAY, delay_ms=4)
    net.run_for(ms=10)
    times = [f.timestamp_ns for f in frames(spy, 0x100)]
    assert 13_500_000 < times[-1] - times[-2] < 14_500_000  # 10 ms + 4 ms late
    restbus.stop("VehicleState")
    count = len(frames(spy, 0x100))
    net.run_for(ms=100)
    assert len(frames(spy, 0x100)) == count and len(frames(spy, 0x120)) == 2
    restbus.start("VehicleState")
    net.run_for(ms=20)
    assert len(frames(spy, 0x100)) == count + 2
    with pytest.raises(ValueError, match="not E2E-protected"):
        restbus.inject("LightCommand", Fault.CORRUPT_CRC)


def test_e2e_config_file_overrides_and_errors(tmp_path: Path) -> None:
    config = tmp_path / "e2e.toml"
    config.write_text('[VehicleState]\nprofile = 1\ndata_id = 0x2A\ndata_id_mode = "LOW"\n')
    assert load(config, DBC)["VehicleState"].data_id == 0x2A  # type: ignore[union-attr]
    config.write_text("[LightCommand]\nprofile = 5\n")
    with pytest.raises(
        E2EConfigError, match=r"e2e\.toml: LightCommand needs exactly one signal named '\*_Counter'"
    ):
        load(config, DBC)
    config.write_text("[VehicleState]\nprofile = 5\n")
    with pytest.raises(E2EConfigError, match="profile 5 needs a 16-bit CRC and a 8-bit counter"):
        load(config, DBC)
    config.write_text("[VehicleStat]\nprofile = 1\n")
    with pytest.raises(E2EConfigError, match="did you mean VehicleState"):
        load(config, DBC)
    config.write_text("[VehicleState\n")
    with pytest.raises(E2EConfigError, match=r"e2e\.toml: .*line 1"):
        load(config, DBC)


def test_the_tester_protects_e2e_messages_it_sends_by_name() -> None:
    from harness.testing import CanTester

    net = Network()
    net.can_bus("can0", 500_000, 2_000_000)
    spy = PythonNode("spy", net.bus("can0"))
    tester = CanTester(net, DBC)
    for speed in range(3):
        tester.send("VehicleState", Speed=speed)
        net.run_for(ms=1)
    rx = E2EReceiver(E2E["VehicleState"])
    assert [rx.check(f.data) for f in spy.received] == [CheckStatus.OK] * 3
    assert [f.data[6] & 0x0F for f in spy.received] == [0, 1, 2]
    tester.send_frame(DBC.encode("VehicleState", Speed=3))  # exactly as given: CRC 0
    net.run_for(ms=1)
    assert rx.check(spy.received[-1].data) is CheckStatus.ERROR


TWINS = """\
VERSION ""
NS_ :
BS_:
BU_: ECU Other

BO_ 1536 StdTwin: 8 ECU
 SG_ A : 0|8@1+ (1,0) [0|255] "" Other

BO_ 2147485184 ExtTwin: 8 Other
 SG_ B : 0|8@1+ (1,0) [0|255] "" ECU

BO_ 1537 BadStart: 1 Other
 SG_ C : 0|8@1+ (1,0) [0|250] "" ECU

BA_DEF_ BO_  "GenMsgCycleTime" INT 0 65535;
BA_DEF_ SG_  "GenSigStartValue" INT -2147483648 2147483647;
BA_ "GenMsgCycleTime" BO_ 1536 10;
BA_ "GenMsgCycleTime" BO_ 2147485184 10;
BA_ "GenMsgCycleTime" BO_ 1537 10;
BA_ "GenSigStartValue" SG_ 1537 C 254;
"""


def test_a_standard_and_an_extended_id_of_one_number_are_two_messages(tmp_path: Path) -> None:
    """The ECU sends standard 0x600; the vehicle's extended 0x600x must still be simulated."""
    path = tmp_path / "twins.dbc"
    path.write_text(TWINS)
    dbc = Dbc.load(path)
    assert dbc.sent_by("ECU") == {0x600}
    assert dbc.sent_by("Other") == {0x600 | 0x8000_0000, 0x601}
    net = Network()
    net.can_bus("can0")
    # a start value the signal cannot take is an error when the rest-bus is made, not later
    with pytest.raises(DbcError, match=r"C=254.* is outside 0\.\.250"):
        RestBus(net, dbc, "ECU")
    path.write_text(TWINS.replace('BA_ "GenSigStartValue" SG_ 1537 C 254;\n', ""))
    restbus = RestBus(net, Dbc.load(path), "ECU")
    assert sorted(restbus.messages) == ["BadStart", "ExtTwin"]
