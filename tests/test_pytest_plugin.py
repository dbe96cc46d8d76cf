"""The pytest plugin, run as a user runs it (pytester)."""

from __future__ import annotations

import pytest

USER_TESTS = """
import pytest

def test_brake(harness_can, harness_ecu):
    harness_can.send("VehicleState", Speed=50, BrakePedal="Pressed")
    status = harness_can.expect("LightStatus", within_ms=20, BrakeLamp=1)
    assert status.signals["SupplyVoltage"] == pytest.approx(13.5)
    assert harness_ecu.gpio("GPIOA").pin(0) == 1

def test_cycle_and_silence(harness_can):
    gaps = harness_can.expect_cycle("LightStatus", 10, tolerance_ms=0.5)
    assert len(gaps) == 5
    harness_can.expect_silence("VehicleState", for_ms=50)

def test_predicates(harness_can):
    harness_can.send("VehicleState", TurnRequest="Hazard")
    harness_can.expect("LightStatus", within_ms=20, Hazard=1, SupplyVoltage=lambda v: v > 12)

@pytest.mark.harness_firmware("canecho")
def test_other_firmware(harness_network, harness_ecu):
    from harness.network import CanFrame, PythonNode
    node = PythonNode("peer", harness_network.bus("can0"))
    node.send(CanFrame(0x40, b"ok"))
    harness_network.run_for(ms=2)
    assert node.received[0].arbitration_id == 0x41

def test_diagnostics(harness_uds, harness_network):
    values = harness_uds.read_data_by_identifier([0xF187]).service_data.values
    assert values[0xF187] == "ELC-ASILB-M4-001"
    harness_uds.change_session(3)
    harness_uds.unlock_security_access(1)  # the fixture provisioned the test secret
    harness_uds.write_data_by_identifier(0xFD10, 30)
    harness_network.run_for(ms=200)
    dtcs = harness_uds.get_dtc_by_status_mask(0x08).service_data.dtcs
    assert [d.id for d in dtcs] == [0xC20100]  # no LIN cluster: the switch is missing
"""


def test_fixtures_and_helpers_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_failed_expectation_shows_what_was_seen(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
def test_wrong(harness_can):
    harness_can.expect("LightStatus", within_ms=30, HeadlightState="High")
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*LightStatus with HeadlightState='High' not seen within 30 ms*frames seen instead*",
        "*ms: BrakeLamp=0, * HeadlightState=Off*",
    ])  # fmt: skip


def test_silence_violation_and_unknown_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
import pytest
from harness.dbc import DbcError

def test_noisy(harness_can):
    harness_can.expect_silence("LightStatus", for_ms=30)

def test_unknown(harness_can):
    with pytest.raises(DbcError, match="no message named 'LightStatu'"):
        harness_can.expect("LightStatu", within_ms=5)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*LightStatus was sent at * should have been silent*"])


def test_bad_options_and_markers_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
import pytest

@pytest.mark.harness_firmware("a", "b")
def test_x(harness_ecu):
    pass
"""
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*harness_firmware takes one ELF path or target name*"])
    result = pytester.runpytest("--harness-bitrate=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    pytester.makepyfile(test_user="def test_x(harness_ecu):\n    pass\n")
    result = pytester.runpytest("--harness-firmware=nope.elf")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*'nope.elf' is neither a file nor a bundled target*"])


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--harness-firmware*", "*--harness-dbc*"])


def test_parallel_workers_share_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_board_by_option_and_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
import pytest

def test_default(harness_ecu, harness_board):
    assert harness_ecu.board.name == harness_board.name

@pytest.mark.harness_board("ASILB-M4F")
def test_fpu_board(harness_ecu):
    assert harness_ecu.board.fpu

@pytest.mark.harness_board("ASILB-M9")
def test_unknown(harness_ecu):
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*harness_board takes one board name (ASILB-M4, ASILB-M4F)*"])
    pytester.makepyfile(
        test_user="""
def test_fpu_board(harness_ecu):
    assert harness_ecu.board.fpu
"""
    )
    pytester.runpytest("-p", "no:cacheprovider", "--harness-board=ASILB-M4F").assert_outcomes(
        passed=1
    )
