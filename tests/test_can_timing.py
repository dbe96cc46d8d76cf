"""Frames on the wire: exact bit counts against ISO 11898-1's bounds and known frames."""

from __future__ import annotations

import can
import pytest
from can_strategies import can_frames
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.frames import timing
from harness.frames.can import FD_LENGTHS, CanFrame, FrameError
from harness.frames.timing import frame_bits, reference_frame_bits


def test_classic_frame_without_stuffing_is_47_plus_8n_bits() -> None:
    # 0x555 with alternating data never has five equal bits in a row before the CRC.
    frame = CanFrame(0x2AA, bytes([0x55] * 8))
    bits = frame_bits(frame)
    assert bits.nominal - bits.stuff == 47 + 64 == 111
    assert bits.data == 0


def test_frame_durations_match_the_saturated_bus_rates() -> None:
    # Notes: a saturated 1 Mbit/s classic bus carries ~9,009 frames/s without stuffing.
    frame = CanFrame(0x2AA, bytes([0x55] * 8))
    assert frame_bits(frame).duration_ns(1_000_000) == 111_000 + 1_000 * frame_bits(frame).stuff
    fd = CanFrame(0x2AA, bytes([0x55] * 64), is_fd=True, brs=True)
    bits = frame_bits(fd)
    assert bits.nominal - 30 <= 4 and bits.data - 549 <= 129
    # 500 kbit/s arbitration, 2 Mbit/s data: ~2,990 frames/s without stuffing.
    assert 330_000 <= bits.duration_ns(500_000, 2_000_000) <= 420_000


@given(
    st.integers(0, 0x7FF),
    st.binary(max_size=8),
)
def test_classic_standard_bits_within_bounds(ident: int, data: bytes) -> None:
    n = len(data)
    bits = frame_bits(CanFrame(ident, data))
    assert 47 + 8 * n <= bits.nominal <= 47 + 8 * n + (34 + 8 * n - 1) // 4


@given(st.integers(0, 0x1FFFFFFF), st.binary(max_size=8))
def test_classic_extended_bits_within_bounds(ident: int, data: bytes) -> None:
    n = len(data)
    bits = frame_bits(CanFrame(ident, data, is_extended=True))
    assert 67 + 8 * n <= bits.nominal <= 67 + 8 * n + (54 + 8 * n - 1) // 4


@given(
    st.integers(0, 0x7FF),
    st.sampled_from(FD_LENGTHS).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
)
def test_fd_with_brs_splits_arbitration_and_data_phases(ident: int, data: bytes) -> None:
    bits = frame_bits(CanFrame(ident, data, is_fd=True, brs=True))
    n = len(data)
    crc = 17 if n <= 16 else 21
    fixed = 4 + crc + 1 + (4 + crc - 1) // 4
    assert 30 <= bits.nominal <= 34
    base = 1 + 4 + 8 * n + fixed  # ESI, DLC, data, stuff count and CRC
    assert base <= bits.data <= base + (5 + 8 * n) // 4 + 1
    # Without BRS every bit runs at the nominal rate. The flipped BRS bit may shift the
    # stuffing of everything after it (ESI, DLC, data), by at most its stuff-bit bound.
    slow = frame_bits(CanFrame(ident, data, is_fd=True))
    assert slow.data == 0
    assert abs(slow.nominal - (bits.nominal + bits.data)) <= (5 + 8 * n) // 4 + 1


def test_stuffing_of_a_dominant_frame() -> None:
    # ID 0 and zero data: a stuff bit after every five dominant bits.
    bits = frame_bits(CanFrame(0, bytes(8)))
    assert bits.stuff >= 15
    assert bits.nominal == 111 + bits.stuff


def test_python_can_round_trip() -> None:
    frame = CanFrame(0x18FF1234, bytes(range(12)), is_extended=True, is_fd=True, brs=True,
                     timestamp_ns=1_500_000, channel="can0")  # fmt: skip
    msg = frame.to_message()
    assert isinstance(msg, can.Message)
    assert msg.is_fd and msg.bitrate_switch and msg.dlc == 12 and msg.timestamp == 0.0015
    assert CanFrame.from_message(msg, timestamp_ns=1_500_000) == frame
    remote = CanFrame(0x123, is_remote=True, remote_length=4)
    assert CanFrame.from_message(remote.to_message()) == remote


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arbitration_id": 0x800}, "does not fit a standard"),
        ({"arbitration_id": 1 << 29, "is_extended": True}, "does not fit a extended"),
        ({"arbitration_id": 1, "data": bytes(9)}, "at most 8 bytes"),
        ({"arbitration_id": 1, "data": bytes(9), "is_fd": True}, "not 9"),
        ({"arbitration_id": 1, "brs": True}, "only in CAN FD"),
        ({"arbitration_id": 1, "is_fd": True, "is_remote": True}, "no remote frames"),
    ],
)
def test_invalid_frames_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(FrameError, match=message):
        CanFrame(**kwargs)  # type: ignore[arg-type]


def test_arbitration_order() -> None:
    low, high = CanFrame(0x100), CanFrame(0x101)
    assert low.arbitration_key() < high.arbitration_key()
    # Same base ID: a standard data frame beats a standard remote frame and an extended frame.
    remote = CanFrame(0x100, is_remote=True)
    extended = CanFrame(0x100 << 18, is_extended=True)
    assert low.arbitration_key() < remote.arbitration_key() < extended.arbitration_key()


@settings(max_examples=3000, deadline=None)
@given(can_frames())
def test_native_timing_equals_the_specification(frame: CanFrame) -> None:
    """timing.c against timing.py: every frame kind, both ID kinds, every FD length."""
    fields = (frame.arbitration_id, frame.data, frame.is_extended, frame.is_fd, frame.brs,
              frame.esi, frame.is_remote, frame.remote_length)  # fmt: skip
    native = timing._native_frame_bits.__wrapped__(*fields)  # uncached, C
    assert native == reference_frame_bits(frame) == frame_bits(frame)
