"""UDS over ISO-TP against the emulated ECU with the real client libraries (udsoncan and
can-isotp, in virtual time): a full reprogramming over CAN FD and classic CAN, the negative
responses the standard prescribes, sessions and security access, DTCs and DIDs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from udsoncan import MemoryLocation
from udsoncan.client import Client
from udsoncan.exceptions import NegativeResponseException, TimeoutException

from harness import boot
from harness.uds import DiagIds, diag_ids, security_key, uds_client
from harness.uds.flash import FlashError, flash
from tests.uds_rig import BANK, BOOT_MS, Rig, make_rig, running, sign

REQUEST, RESPONSE = 0x7E0, 0x7E8


@pytest.fixture(scope="module")
def images(firmware: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uds")
    made = {"A1": sign(firmware["elc_a"], "A", (1, 0, 0), 1),
            "B2": sign(firmware["elc_b"], "B", (1, 1, 0), 2),
            "B_old": sign(firmware["elc_b"], "B", (0, 9, 0), 1)}  # fmt: skip
    for name, data in made.items():
        (folder / f"{name}.bin").write_bytes(data)
    return {name: folder / f"{name}.bin" for name in made}


@pytest.fixture
def rig(firmware: dict[str, Path], images: dict[str, Path]) -> Rig:
    return make_rig(firmware, images["A1"])


@pytest.fixture
def client(rig: Rig) -> Iterator[Client]:
    with uds_client(rig.network) as c:
        yield c


def nrc_of(call: object) -> int:
    """The NRC of a request that must be refused."""
    assert callable(call)
    with pytest.raises(NegativeResponseException) as refused:
        call()
    return int(refused.value.response.code)


def diag_frames(rig: Rig, ident: int) -> list[bytes]:
    return [f.data for f in rig.spy.received if f.arbitration_id == ident]


def programming(client: Client) -> None:
    """Extended session, then programming (the hand-over to the bootloader), unlocked."""
    client.change_session(3)
    client.change_session(2)
    client.unlock_security_access(1)


# ---- the whole reprogramming ----


@pytest.mark.parametrize("fd", [True, False], ids=["can-fd", "classic"])
def test_reprogramming_over_uds(firmware: dict[str, Path], images: dict[str, Path],
                                fd: bool) -> None:  # fmt: skip
    rig = make_rig(firmware, images["A1"])
    assert running(rig.ecu) == ("A", "confirmed")
    data = images["B2"].read_bytes()
    with uds_client(rig.network, fd=fd) as client:
        result = flash(client, data)
    assert result.bytes_sent == len(data) and result.address == BANK["B"]
    assert result.block_length == 4096 and result.blocks == -(-len(data) // 4096)
    rig.network.run_for(ms=BOOT_MS)
    assert running(rig.ecu) == ("B", "confirmed")  # booted in trial, confirmed itself
    report = boot.report(rig.ecu)
    assert report is not None and report.state == "trial" and report.attempts == 1
    with uds_client(rig.network, fd=fd) as client:
        values = client.read_data_by_identifier([0xF189, 0xFD00, 0xFD01, 0xFD02]).service_data
        assert values.values == {0xF189: (1, 1, 0), 0xFD00: (1, 0, 0), 0xFD01: (1, 1, 0),
                                 0xFD02: {"confirmed": "B", "trial": None}}  # fmt: skip
    responses = diag_frames(rig, RESPONSE)
    requests = diag_frames(rig, REQUEST)
    sizes = {len(d) for d in requests}
    if fd:  # the transfer's consecutive frames fill 64-byte FD frames
        assert 64 in sizes and all(f.is_fd for f in rig.spy.received if f.arbitration_id == REQUEST)
    else:
        assert sizes == {8} and all(len(d) == 8 for d in responses)  # classic, padded
    # the erase took long enough to need 0x78 response-pending, and got it
    assert bytes([0x7F, 0x31, 0x78]) in {d[1:4] for d in responses}


def test_the_bootloader_answers_in_the_format_of_the_request(rig: Rig) -> None:
    with uds_client(rig.network, fd=False) as client:
        client.change_session(3)
        client.change_session(2)  # answered by the bootloader after the reset
        assert rig.ecu.uart("USART1").text.endswith("boot: programming session requested\n")
        did = client.read_data_by_identifier([0xF189]).service_data.values
        assert did[0xF189] == (1, 0, 0)  # the bootloader's own version
    frames = [f for f in rig.spy.received if f.arbitration_id == RESPONSE]
    assert frames and not any(f.is_fd for f in frames)


# ---- negative responses ----


def test_security_access_wrong_key_attempts_and_delay(rig: Rig, client: Client) -> None:
    client.change_session(3)
    seed = client.request_seed(1).service_data.seed
    assert len(seed) == 8
    wrong = bytes(b ^ 0xFF for b in security_key(bytes(16), seed))
    assert nrc_of(lambda: client.send_key(2, wrong)) == 0x35  # invalid key
    for _ in range(1):
        client.request_seed(1)
        assert nrc_of(lambda: client.send_key(2, wrong)) == 0x35
    client.request_seed(1)
    assert nrc_of(lambda: client.send_key(2, wrong)) == 0x36  # exceeded number of attempts
    assert nrc_of(lambda: client.request_seed(1)) == 0x37  # required time delay not expired
    for _ in range(3):  # tester present keeps the extended session (S3 is 5 s)
        rig.network.run_for(ms=3_400)
        client.tester_present()
    client.unlock_security_access(1)  # after the 10 s delay a right key unlocks
    assert nrc_of(lambda: client.send_key(2, bytes(8))) == 0x24  # a key without a seed


def test_download_sequence_errors(rig: Rig, client: Client) -> None:
    programming(client)
    assert nrc_of(lambda: client.transfer_data(1, b"\x00" * 8)) == 0x24  # no download
    assert nrc_of(lambda: client.request_transfer_exit()) == 0x24
    memory = MemoryLocation(BANK["B"], 4096, 32, 32)
    assert nrc_of(lambda: client.request_download(memory)) == 0x70  # not erased
    client.start_routine(0xFF00)
    wrong = MemoryLocation(BANK["A"], 4096, 32, 32)  # the bank that runs: out of range
    assert nrc_of(lambda: client.request_download(wrong)) == 0x31
    assert nrc_of(lambda: client.request_download(MemoryLocation(BANK["B"], 2 << 20, 32, 32))) \
        == 0x31  # larger than the bank
    client.request_download(memory)
    assert nrc_of(lambda: client.transfer_data(2, b"\x11" * 16)) == 0x73  # wrong counter
    assert nrc_of(lambda: client.transfer_data(1, b"\x11" * 4097)) == 0x13  # too long
    client.transfer_data(1, b"\x11" * 16)
    flc_ops = rig.ecu.peripheral("FLC").operations  # type: ignore[attr-defined]
    client.transfer_data(1, b"\x11" * 16)  # the last block again: answered, not rewritten
    assert rig.ecu.peripheral("FLC").operations == flc_ops  # type: ignore[attr-defined]
    assert rig.ecu.read_memory(BANK["B"], 16) == b"\x11" * 16
    assert nrc_of(lambda: client.request_transfer_exit()) == 0x24  # bytes still missing
    assert nrc_of(lambda: client.request_download(memory)) == 0x22  # one is running


def test_a_programming_failure_suspends_the_download(rig: Rig, client: Client) -> None:
    programming(client)
    client.start_routine(0xFF00)
    client.request_download(MemoryLocation(BANK["B"], 8192, 32, 32))
    client.transfer_data(1, b"\x22" * 4096)
    flc: Any = rig.ecu.peripheral("FLC")
    flc.protected = (*flc.protected, (BANK["B"] + 4096, 4096))  # the next block's flash fails
    assert nrc_of(lambda: client.transfer_data(2, b"\x33" * 4096)) == 0x72  # programming failure
    assert nrc_of(lambda: client.transfer_data(3, b"\x33" * 16)) == 0x71  # suspended since
    assert rig.ecu.read_memory(BANK["B"], 4096) == b"\x22" * 4096  # the first block stands


def test_sessions_and_what_they_allow(rig: Rig, client: Client) -> None:
    assert nrc_of(lambda: client.request_seed(1)) == 0x7F  # not in the default session
    assert nrc_of(lambda: client.change_session(2)) == 0x7E  # programming only from extended
    assert nrc_of(lambda: client.change_session(0x42)) == 0x12
    assert nrc_of(lambda: client.read_memory_by_address(MemoryLocation(0, 4, 32, 8))) == 0x11
    client.change_session(3)
    assert nrc_of(lambda: client.write_data_by_identifier(0xFD10, 30)) == 0x33  # locked
    client.config["data_identifiers"] = {**client.config["data_identifiers"], 0x1234: ">H"}
    assert nrc_of(lambda: client.read_data_by_identifier([0x1234])) == 0x31
    client.write_data_by_identifier(0xF190, "WVWZZZ1JZXW000001")  # VIN: no security needed
    client.unlock_security_access(1)
    assert nrc_of(lambda: client.write_data_by_identifier(0xFD10, 0)) == 0x31
    client.write_data_by_identifier(0xFD10, 30)
    rig.network.run_for(ms=4_000)
    client.tester_present()
    rig.network.run_for(ms=4_000)  # 8 s in the session: tester present kept it
    assert client.read_data_by_identifier([0xFD10]).service_data.values[0xFD10] == (30,)
    rig.network.run_for(ms=5_100)  # S3: back to the default session, locked
    assert nrc_of(lambda: client.request_seed(1)) == 0x7F
    values = client.read_data_by_identifier([0xF190]).service_data.values
    assert values[0xF190] == "WVWZZZ1JZXW000001"


def test_suppressed_positive_responses_and_functional_requests(rig: Rig, client: Client) -> None:
    before = len(diag_frames(rig, RESPONSE))
    with client.suppress_positive_response:
        client.tester_present()
        client.change_session(3)
    rig.network.run_for(ms=10)
    assert len(diag_frames(rig, RESPONSE)) == before  # no answers
    assert nrc_of(lambda: client.request_seed(3)) == 0x12  # a negative answer is never hidden
    # functional requests (to 0x7DF): answered, except the NRCs a functional request must
    # not get (ISO 14229-1 7.5), here "service not supported"
    ids = diag_ids()
    assert ids.functional == 0x7DF
    functional = uds_client(rig.network, ids=DiagIds(ids.functional, ids.response, None))
    with functional:
        assert functional.tester_present().positive
        functional.conn.send(b"\x83\x01")
        with pytest.raises(TimeoutException):
            functional.conn.wait_frame(timeout=0.2, exception=True)
    assert {f.arbitration_id for f in rig.spy.received} >= {0x7DF}


def test_dtcs_snapshots_and_clear(rig: Rig, client: Client) -> None:
    # no LIN cluster on this bench: the switch never answers its header (the lamps' frames
    # are event-triggered: silence there is no error), so its DTC is set
    rig.network.run_for(ms=200)
    dtcs = client.get_dtc_by_status_mask(0x09).service_data.dtcs
    assert {d.id: d.status.get_byte_as_int() for d in dtcs} == {0xC20100: 0x09}
    supported = client.get_supported_dtc().service_data.dtcs
    assert {d.id for d in supported} == {0xC12100, 0xC12200, 0xC02800, 0xC20100, 0xC20200,
                                         0xC20300}  # fmt: skip
    snap = client.get_dtc_snapshot_by_dtc_number(0xC20100, record_number=1).service_data.dtcs[0]
    taken = {s.did: s.data for s in snap.snapshots}
    assert 0 < taken[0x0101][0] < BOOT_MS and taken[0x0102] == (0,)  # uptime ms, speed
    client.clear_dtc(0xFFFFFF)
    assert client.get_dtc_by_status_mask(0x08).service_data.dtcs == []
    assert nrc_of(lambda: client.clear_dtc(0x123456)) == 0x31


def test_dtc_setting_off_freezes_the_status(rig: Rig, client: Client) -> None:
    rig.network.run_for(ms=200)
    client.clear_dtc(0xFFFFFF)
    client.change_session(3)
    client.control_dtc_setting(2)  # off
    rig.network.run_for(ms=200)
    assert client.get_dtc_by_status_mask(0xFF).service_data.dtcs == []
    client.control_dtc_setting(1)
    rig.network.run_for(ms=200)
    assert [d.id for d in client.get_dtc_by_status_mask(0x01).service_data.dtcs] == [0xC20100]


def test_communication_control_silences_the_application(rig: Rig, client: Client) -> None:
    client.change_session(3)
    client.communication_control(1, 1)  # enable RX, disable TX of normal messages
    rig.network.run_for(ms=50)
    start = rig.network.now_ns
    rig.network.run_for(ms=300)
    sent = [f for f in rig.spy.received if f.timestamp_ns > start and f.arbitration_id != RESPONSE]
    assert sent == []
    client.communication_control(0, 1)
    rig.network.run_for(ms=50)
    assert any(f.arbitration_id == 0x300 for f in rig.spy.received if f.timestamp_ns >
               rig.network.now_ns - 50_000_000)  # fmt: skip


def test_ecu_reset(rig: Rig, client: Client) -> None:
    client.ecu_reset(1)
    rig.network.run_for(ms=BOOT_MS)
    report = boot.report(rig.ecu)
    assert report is not None and report.reset_causes & 2  # SYSCTL.RSTCAUSE.SW
    assert running(rig.ecu) == ("A", "confirmed")


def test_image_checks_refuse_what_the_bootloader_would_refuse(
    rig: Rig, images: dict[str, Path]
) -> None:
    refused = pytest.raises(FlashError, match="not newer than the ECU's confirmed image")
    with uds_client(rig.network) as client, refused:
        flash(client, images["B_old"].read_bytes())


@pytest.mark.parametrize("damage", ["truncated", "not an image", "trailing bytes"])
def test_a_bad_image_file_is_refused_before_anything_is_sent(rig: Rig, images: dict[str, Path],
                                                             damage: str) -> None:  # fmt: skip
    data = images["B2"].read_bytes()
    bad, why = {"truncated": (data[:-100], "the header says \\d+ body bytes and a 16-byte CMAC"),
                "not an image": (b"\x7fELF" + data[4:], "not a signed image"),
                "trailing bytes": (data + b"\x00", "the header says 2\\d+ \\(header")}[damage]
    before = len(rig.spy.received)
    with uds_client(rig.network) as client, pytest.raises(FlashError, match=f"new.bin: .*{why}"):
        flash(client, bad, source="new.bin")
    assert len(diag_frames(rig, REQUEST)) == 0 and len(rig.spy.received) >= before


def test_udsoncan_sees_the_ecu_reset_and_times_out_in_virtual_time(rig: Rig) -> None:
    with uds_client(rig.network, config={"p2_timeout": 0.5}) as client:
        rig.ecu.power_off()
        start = rig.network.now_ns
        with pytest.raises(TimeoutException):
            client.tester_present()
        assert 500e6 <= rig.network.now_ns - start < 520e6

