"""AUTOSAR E2E profiles 1, 2, 5 against two independent implementations (autosar-e2e's C
code for all three, cantools' helpers for 2 and 5), published vectors, the check status and
the state machine."""

from __future__ import annotations

import e2e as reference
import pytest
from cantools.autosar.end_to_end import compute_profile2_crc, compute_profile5_crc
from hypothesis import given
from hypothesis import strategies as st

from harness.e2e import (
    CheckStatus,
    DataIdMode,
    E2EReceiver,
    Profile1,
    Profile2,
    Profile5,
    SmConfig,
    SmState,
)
from harness.e2e.profiles import crc8_sae_j1850, crc8h2f, crc16_ccitt_false

payloads = st.sampled_from([8, 12, 16, 20, 32, 64]).flatmap(
    lambda n: st.binary(min_size=n, max_size=n)
)
MODES = {
    DataIdMode.BOTH: reference.p01.E2E_P01_DATAID_BOTH,
    DataIdMode.ALT: reference.p01.E2E_P01_DATAID_ALT,
    DataIdMode.LOW: reference.p01.E2E_P01_DATAID_LOW,
    DataIdMode.NIBBLE: reference.p01.E2E_P01_DATAID_NIBBLE,
}


def test_crc_check_values() -> None:
    # The catalogue's check values: CRC of b"123456789".
    assert crc8_sae_j1850(b"123456789") == 0x4B
    assert crc8h2f(b"123456789") == 0xDF
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_profile1_published_vector() -> None:
    # Data ID 0x123, both bytes, counter 0, zero data: CRC 0xCC (autosar-e2e's test vector).
    assert Profile1(0x123).protect(bytes(8), 0)[:2] == b"\xcc\x00"
    assert Profile1(0x123, DataIdMode.NIBBLE).protect(bytes(8), 0)[:2] == b"\x2a\x10"


@given(payloads, st.integers(0, 0xFFFF), st.integers(0, 14), st.sampled_from(list(MODES)))
def test_profile1_matches_autosar_e2e(payload: bytes, data_id: int, counter: int,
                                      mode: DataIdMode) -> None:  # fmt: skip
    mine = Profile1(data_id, mode).protect(payload, counter)
    theirs = bytearray(mine)
    theirs[0] = 0
    reference.p01.e2e_p01_protect(theirs, data_id, data_id_mode=MODES[mode],
                                  increment_counter=False)  # fmt: skip
    assert bytes(theirs) == mine
    assert reference.p01.e2e_p01_check(bytearray(mine), data_id, data_id_mode=MODES[mode])


@given(payloads, st.lists(st.integers(0, 255), min_size=16, max_size=16), st.integers(0, 15))
def test_profile2_matches_autosar_e2e_and_cantools(payload: bytes, ids: list[int],
                                                   counter: int) -> None:  # fmt: skip
    mine = Profile2(tuple(ids)).protect(payload, counter)
    assert mine[1] & 0x0F == counter
    assert compute_profile2_crc(mine, ids[counter]) == mine[0]
    theirs = bytearray(mine)
    theirs[0] = 0
    reference.p02.e2e_p02_protect(theirs, bytes(ids), increment_counter=False)
    assert bytes(theirs) == mine


@given(payloads, st.integers(0, 0xFFFF), st.integers(0, 255))
def test_profile5_matches_autosar_e2e_and_cantools(payload: bytes, data_id: int,
                                                   counter: int) -> None:  # fmt: skip
    mine = Profile5(data_id).protect(payload, counter)
    assert mine[2] == counter
    assert compute_profile5_crc(mine, data_id) == mine[0] | mine[1] << 8
    theirs = bytearray(mine)
    theirs[0] = theirs[1] = 0
    reference.p05.e2e_p05_protect(theirs, data_id, increment_counter=False)
    assert bytes(theirs) == mine


@pytest.mark.parametrize("profile", [Profile1(0x321), Profile2(tuple(range(16))), Profile5(0x321)],
                         ids=["P01", "P02", "P05"])  # fmt: skip
def test_check_status_for_each_fault(profile: Profile1 | Profile2 | Profile5) -> None:
    rx = E2EReceiver(profile)
    frames = [profile.protect(bytes(8), n) for n in range(6)]
    assert rx.check(frames[0]) is CheckStatus.OK
    assert rx.check(frames[1]) is CheckStatus.OK
    assert rx.check(frames[1]) is CheckStatus.REPEATED
    assert rx.check(frames[4]) is CheckStatus.WRONG_SEQUENCE  # 2 and 3 were lost
    assert rx.check(frames[5]) is CheckStatus.OK
    corrupt = bytearray(profile.protect(bytes(8), 6))
    corrupt[-1] ^= 0x01  # one data bit flipped
    assert rx.check(bytes(corrupt)) is CheckStatus.ERROR
    assert rx.check(None) is CheckStatus.NO_NEW_DATA


def test_wrong_data_id_is_an_error() -> None:
    sent = Profile5(0x100).protect(bytes(8), 0)
    assert E2EReceiver(Profile5(0x101)).check(sent) is CheckStatus.ERROR
    sent1 = Profile1(0x100, DataIdMode.NIBBLE).protect(bytes(8), 0)
    assert E2EReceiver(Profile1(0x200, DataIdMode.NIBBLE)).check(sent1) is CheckStatus.ERROR


def test_state_machine_init_valid_invalid_and_recovery() -> None:
    profile = Profile5(0x42)
    rx = E2EReceiver(profile, SmConfig(window_size=3, min_ok_init=2, max_error_init=0,
                                       min_ok_valid=2, max_error_valid=1, min_ok_invalid=3,
                                       max_error_invalid=0))  # fmt: skip
    counter = iter(range(1000))

    def good() -> bytes:
        return profile.protect(bytes(8), next(counter))

    assert rx.state is SmState.NODATA
    rx.check(None)
    assert rx.state is SmState.NODATA  # nothing yet
    rx.check(good())
    assert rx.state is SmState.INIT
    rx.check(good())
    assert rx.state is SmState.VALID  # two OK in the window
    rx.check(b"\x00" * 8)  # one error: still within max_error_valid
    assert rx.state is SmState.VALID
    rx.check(None)  # the window now holds ERROR, NO_NEW_DATA and one OK
    assert rx.state is SmState.INVALID
    rx.check(good())
    rx.check(good())
    assert rx.state is SmState.INVALID  # recovery needs three OK in a row
    rx.check(good())
    assert rx.state is SmState.VALID


def test_profile2_needs_sixteen_data_ids() -> None:
    with pytest.raises(ValueError, match="16 data IDs"):
        Profile2((1, 2, 3))


@given(st.binary(min_size=16, max_size=16), st.integers(0, 0xFFFF), st.integers(0, 14),
       st.integers(0, 14))  # fmt: skip
def test_header_offsets_match_autosar_e2e(payload: bytes, data_id: int, counter: int,
                                          offset: int) -> None:  # fmt: skip
    p1 = Profile1(data_id, crc_offset=offset, counter_offset=8 * (offset + 1),
                  nibble_offset=8 * (offset + 1) + 4)  # fmt: skip
    mine = p1.protect(payload, counter)
    theirs = bytearray(mine)
    theirs[offset] = 0
    reference.p01.e2e_p01_protect(theirs, data_id, offset=offset, increment_counter=False)
    assert bytes(theirs) == mine and p1.counter(mine) == counter
    p5 = Profile5(data_id, offset=min(offset, 13))
    mine5 = p5.protect(payload, counter)
    theirs5 = bytearray(mine5)
    theirs5[p5.offset] = theirs5[p5.offset + 1] = 0
    reference.p05.e2e_p05_protect(theirs5, data_id, offset=p5.offset, increment_counter=False)
    assert bytes(theirs5) == mine5 and p5.counter(mine5) == counter


def test_profile1_with_the_crc_after_the_counter() -> None:
    # VehicleState's layout in the project DBC: counter at bit 48, CRC in byte 7.
    p = Profile1(0x100, crc_offset=7, counter_offset=48)
    frame = p.protect(bytes(range(8)), 9)
    assert frame[:6] == bytes(range(6)) and frame[6] & 0x0F == 9 and p.crc_ok(frame)
    assert not p.crc_ok(frame[:6] + bytes([frame[6] ^ 0x01]) + frame[7:])
