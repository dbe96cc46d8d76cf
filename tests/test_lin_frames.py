"""LIN protected IDs, checksums and frame timing against the LIN 2.x / ISO 17987 rules and
the specification's published examples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.frames.lin import (
    LinError,
    LinFrame,
    checksum,
    frame_id_of,
    max_frame_ns,
    nominal_ns,
    protected_id,
)


@pytest.mark.parametrize(
    ("frame_id", "pid"),
    # from the protected-identifier table of the LIN 2.x specification
    [(0x00, 0x80), (0x01, 0xC1), (0x02, 0x42), (0x03, 0x03), (0x10, 0x50), (0x20, 0x20),
     (0x3C, 0x3C), (0x3D, 0x7D), (0x3E, 0xFE), (0x3F, 0xBF)],
)  # fmt: skip
def test_protected_ids_match_the_specification(frame_id: int, pid: int) -> None:
    assert protected_id(frame_id) == pid
    assert frame_id_of(pid) == frame_id


def test_a_parity_error_is_named() -> None:
    with pytest.raises(LinError, match=r"protected ID 0xC0: parity error \(0x00 is sent as 0x80\)"):
        frame_id_of(0xC0)
    with pytest.raises(LinError, match=r"0\.\.0x3F, not 0x40"):
        protected_id(0x40)


def test_the_specification_checksum_example() -> None:
    # LIN 2.x, "checksum calculation": 0x4A, 0x55, 0x93, 0xE5 -> sum with carry 0x19 -> 0xE6
    assert checksum(bytes([0x4A, 0x55, 0x93, 0xE5])) == 0xE6


def test_enhanced_checksums_include_the_pid_except_for_diagnostic_frames() -> None:
    data = bytes([0x01, 0x02])
    assert checksum(data, protected_id(0x10)) == checksum(bytes([0x50]) + data)
    for diagnostic in (0x3C, 0x3D):  # master request / slave response: always classic
        assert checksum(data, protected_id(diagnostic)) == checksum(data)


@given(st.integers(0, 0x3F), st.binary(min_size=1, max_size=8), st.booleans())
def test_a_frame_reads_back_from_its_response(frame_id: int, data: bytes, enhanced: bool) -> None:
    frame = LinFrame(frame_id, data, enhanced)
    # receivers check: sum with carry of (PID,) data and checksum is 0xFF
    total = frame.pid if enhanced and frame_id not in (0x3C, 0x3D) else 0
    for byte in frame.response():
        total += byte
        total = (total & 0xFF) + (total >> 8)
    assert total == 0xFF
    assert LinFrame.from_response(frame.pid, frame.response(), enhanced) == frame
    broken = frame.response()[:-1] + bytes([frame.checksum ^ 0x01])
    with pytest.raises(LinError, match="checksum"):
        LinFrame.from_response(frame.pid, broken, enhanced)


def test_frame_timing_at_19200_baud() -> None:
    # 34 header bits + 10 bits per data byte and the checksum: 8 bytes -> 124 bits
    assert nominal_ns(8, 19_200) == -(-124 * 1_000_000_000 // 19_200)  # 6.458 ms, rounded up
    assert max_frame_ns(8, 19_200) == round(nominal_ns(8, 19_200) * 1.4)
    with pytest.raises(LinError, match=r"1\.\.8 data bytes"):
        LinFrame(0x10, bytes(9))
