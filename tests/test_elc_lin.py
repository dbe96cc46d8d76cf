"""The light controller as LIN master and CAN-LIN gateway, through the pytest fixtures: it runs
the LDF's schedule on USART2, gateways the steering-column switch onto CAN (LinGateway) and
the lamp outputs onto LIN (LampCommand), reports each slave's LIN status and DTC, resolves
event-triggered collisions, and sleeps and wakes with the vehicle state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.ldf import PROJECT_LDF, Ldf
from harness.lin_testing import LinCluster, check_firmware_tables
from harness.machine import Machine
from harness.testing import CanTester

# The switch is read every NormalTable round (30 ms); its frame takes 4.7 ms at most; the
# gateway runs on the next 1 ms tick and LinGateway is a classic CAN frame: at most 36 ms.
STALK_TO_CAN_MS = 36
DTC_FAILED_CONFIRMED, DTC_CONFIRMED = 0x09, 0x08


def keep_vehicle_awake(can: CanTester, ms: float) -> None:
    """VehicleState every 10 ms for `ms` (the cluster sleeps after 1 s without it)."""
    for _ in range(round(ms / 10)):
        can.send("VehicleState", Speed=50, BrakePedal=0, TurnRequest=0, LongAccel=0)
        can.network.run_for(ms=10)


def test_the_controller_runs_the_normal_table_at_its_slot_delays(harness_lin: LinCluster):
    frames = harness_lin.expect_schedule("NormalTable", cycles=3, tolerance_ms=1.0)
    assert [f.status for f in frames if f.frame_id == 0x10] == ["ok"] * 3
    assert all(f.status == "ok" for f in frames if f.frame_id == 0x20)  # its own LampCommand


def test_a_stalk_change_on_lin_reaches_can_within_the_stated_latency(
    harness_lin: LinCluster, harness_can: CanTester
) -> None:
    harness_lin.expect_schedule("NormalTable", cycles=1)
    start = harness_can.network.now_ns
    harness_lin.publish("SwitchStatus", TurnStalk="Left", LightSwitch="LowBeam")
    seen = harness_can.expect("LinGateway", within_ms=STALK_TO_CAN_MS, TurnStalk="Left",
                              LightSwitch="LowBeam", ScsLinStatus="Ok")  # fmt: skip
    assert (seen.timestamp_ns - start) / 1e6 <= STALK_TO_CAN_MS


def test_a_can_command_reaches_the_lamp_slaves(
    harness_lin: LinCluster, harness_can: CanTester
) -> None:
    harness_lin.expect("LampCommand", within_ms=40, LowBeamOn=0, HighBeamOn=0)
    harness_can.send("LightCommand", HeadlightMode="Low", FogLight=0, AmbientLevel=50,
                     Temperature=20)  # fmt: skip
    harness_lin.expect("LampCommand", within_ms=40, LowBeamOn=1, HighBeamOn=0,
                       LampBrightness=100.0)  # fmt: skip
    harness_can.send("VehicleState", Speed=0, BrakePedal=0, TurnRequest="Left", LongAccel=0)
    harness_lin.expect("LampCommand", within_ms=40, TurnLeftOn=1)


@pytest.mark.parametrize(("fault", "status"), [
    ("no response", "NoResponse"), ("checksum", "ChecksumError"),
    ("partial", "Incomplete"), ("framing", "FramingError"),
])  # fmt: skip
def test_a_slave_fault_is_a_lin_status_and_a_dtc_on_can(
    harness_lin: LinCluster, harness_can: CanTester, fault: str, status: str
) -> None:
    harness_can.expect("LinGateway", within_ms=150, ScsLinStatus="Ok", DtcLinScs=0)
    harness_lin.inject("SwitchStatus", fault)
    harness_can.expect("LinGateway", within_ms=40, ScsLinStatus=status,
                       DtcLinScs=DTC_FAILED_CONFIRMED)  # fmt: skip
    # the next good response clears testFailed; confirmedDTC stays
    harness_can.expect("LinGateway", within_ms=40, ScsLinStatus="Ok", DtcLinScs=DTC_CONFIRMED)


def test_a_parity_error_on_the_event_triggered_header_is_no_collision(
    harness_lin: LinCluster, harness_can: CanTester
) -> None:
    harness_lin.inject("LampFaultEvent", "parity")  # its own header, corrupted on the wire
    harness_lin.network.run_for(ms=40)
    assert [r.status for r in harness_lin.bus.records if r.frame_id == 0x23] == ["parity error"]
    seen = harness_can.expect("LinGateway", within_ms=100, ScsLinStatus="Ok")
    assert seen.signals["LinCollisions"] == 0
    assert not any(r.frame_id in (0x21, 0x22) for r in harness_lin.bus.records)  # no resolving


def test_a_slave_reporting_its_response_error_is_a_slave_error(
    harness_lin: LinCluster, harness_can: CanTester
) -> None:
    harness_lin.publish("SwitchStatus", ScsResponseError=1)
    harness_can.expect("LinGateway", within_ms=40, ScsLinStatus="SlaveError",
                       DtcLinScs=DTC_FAILED_CONFIRMED)  # fmt: skip


def test_lamp_faults_come_by_the_event_triggered_frame_and_collisions_are_resolved(
    harness_lin: LinCluster, harness_can: CanTester
) -> None:
    harness_lin.publish("LampLeftStatus", LampLeftFault="Fault")
    harness_can.expect("LinGateway", within_ms=40, LampLeftFault=1, LampLeftLinStatus="Ok")
    # both lamps with news at once: a collision on LampFaultEvent; the controller runs the
    # collision-resolving table, which polls each lamp
    harness_lin.publish("LampLeftStatus", LampLeftFault="Ok")
    harness_lin.publish("LampRightStatus", LampRightFault="Fault")
    seen = harness_can.expect("LinGateway", within_ms=80, LampLeftFault=0, LampRightFault=1)
    assert seen.signals["LinCollisions"] == 1
    bus = harness_lin.bus
    collision = next(i for i, r in enumerate(bus.records) if r.status == "collision")
    assert [r.frame_id for r in bus.records[collision + 1:collision + 3]] == [0x21, 0x22]


def test_the_cluster_sleeps_without_vehicle_state_and_wakes_with_it(
    harness_lin: LinCluster, harness_can: CanTester
) -> None:
    bus = harness_lin.bus
    harness_can.expect("LinGateway", within_ms=1_100, LinAsleep=1)
    sleep = [r for r in bus.records if r.is_sleep_command]
    assert len(sleep) == 1 and bus.asleep  # the go-to-sleep command went out once
    asleep_at = harness_can.network.now_ns
    harness_can.network.run_for(ms=200)
    assert [r for r in bus.records if r.start_ns > asleep_at] == []  # the schedule stopped
    woken_at = harness_can.network.now_ns
    keep_vehicle_awake(harness_can, 150)
    after = [r for r in bus.records if r.start_ns > woken_at]
    assert after[0].status == "wake-up"
    first_header = after[1]
    # the slaves get their 100 ms to wake before the first header (ISO 17987-2)
    assert first_header.start_ns - after[0].timestamp_ns >= 100_000_000
    assert first_header.status == "ok" and first_header.frame_id == 0x10


def test_a_slave_wakes_the_sleeping_cluster(
    harness_lin: LinCluster, harness_can: CanTester
) -> None:
    harness_can.expect("LinGateway", within_ms=1_100, LinAsleep=1)
    harness_can.network.run_for(ms=50)
    harness_lin.wake_up("SCS")
    harness_can.expect("LinGateway", within_ms=150, LinAsleep=0, ScsLinStatus="Ok")


def test_an_ldf_the_firmware_was_not_built_from_is_reported(
    harness_ecu: Machine, harness_ldf: Ldf, tmp_path
) -> None:
    text = Path(harness_ldf.source).read_text()
    other = tmp_path / "other.ldf"
    other.write_text(text.replace("SwitchStatus: 0x10, SCS, 2", "SwitchStatus: 0x11, SCS, 2"))
    with pytest.raises(HarnessError, match=r"elc.elf was built from another LDF than .*other"
                                           r"\.ldf: its LIN tables do not know SwitchStatus "
                                           r"\(ID 0x11, 2 bytes\); rebuild it"):  # fmt: skip
        check_firmware_tables(harness_ecu, Ldf.load(other))
    # the same frames, a signal elsewhere: the firmware would read the stalk at other bits
    other.write_text(text.replace("    TurnStalk, 0;\n    LightSwitch, 2;",
                                  "    TurnStalk, 2;\n    LightSwitch, 0;"))  # fmt: skip
    differ = r"its LIN tables have the same frames but differ in what they say of them"
    with pytest.raises(HarnessError, match=differ):
        check_firmware_tables(harness_ecu, Ldf.load(other))
    check_firmware_tables(harness_ecu, harness_ldf)  # the LDF it was built from passes


def test_harness_run_puts_the_firmware_on_the_ldfs_cluster(firmware, tmp_path) -> None:
    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness.cli.main", "run", "--firmware",
                               str(firmware["elc"]), "--ms", "40", "--lin",
                               str(PROJECT_LDF), *extra],
                              capture_output=True, text=True, check=False)  # fmt: skip

    shown = run()
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "lin0:"
    assert lines[1].split()[2:12] == ["id", "0x10", "pid", "0x50", "c0", "00", "cs", "EE", "ok",
                                      "SCS"]  # fmt: skip
    assert lines[2].split()[-5:-3] == ["ok", "ECU.USART2"]  # its own LampCommand
    log = tmp_path / "lin0.txt"
    assert run("--lin-log", str(log)).returncode == 0
    assert log.read_text().splitlines()[1:] == lines[1:5]
    wrong = run("--lin-port", "GPIOA")
    assert wrong.returncode == 2 and "--lin-port GPIOA: ECU.GPIOA is neither" in wrong.stderr
    wrong = run("--lin-port", "MCAN0")
    assert wrong.returncode == 2 and wrong.stderr.strip() == (
        "error: --lin-port MCAN0: ECU.MCAN0 cannot join LIN bus 'lin0': not a USART")
    quiet = run("--lin-port", "USART1")  # the firmware sends no header there
    assert quiet.returncode == 0
    assert "warning: no LIN frames: the firmware sent no header on USART1" in quiet.stderr
    nowhere = run("--lin-log", str(tmp_path / "missing" / "lin0.txt"))
    assert nowhere.returncode == 2 and "its directory does not exist" in nowhere.stderr
