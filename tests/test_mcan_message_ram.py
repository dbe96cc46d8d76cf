"""M_CAN message-RAM element layouts and filter semantics."""

from __future__ import annotations

import struct

import pytest
from can_strategies import can_frames
from hypothesis import given
from hypothesis import strategies as st

from harness.frames.can import CanFrame
from harness.peripherals.mcan.message_ram import (
    Filter,
    FilterAction,
    FilterType,
    data_field_size,
    element_words,
    first_match,
    read_extended_filter,
    read_rx_element,
    read_standard_filter,
    read_tx_element,
    write_rx_element,
    write_tx_element,
)


@given(can_frames(), st.integers(0, 255), st.booleans())
def test_tx_element_round_trip(frame: CanFrame, marker: int, event: bool) -> None:
    ram = bytearray(72)
    write_tx_element(ram, 0, frame, marker, event)
    assert read_tx_element(ram, 0) == (frame, marker, event)


@given(can_frames(), st.none() | st.integers(0, 127), st.integers(0, 0xFFFF))
def test_rx_element_round_trip(frame: CanFrame, index: int | None, stamp: int) -> None:
    ram = bytearray(72)
    write_rx_element(ram, 0, frame, index, stamp)
    assert read_rx_element(ram, 0) == (frame, index, stamp)


def test_standard_id_layout_matches_the_manual() -> None:
    ram = bytearray(16)
    write_tx_element(ram, 0, CanFrame(0x123, b"\x11\x22\x33", is_fd=True, brs=True), marker=7)
    t0, t1, t2 = struct.unpack_from("<III", ram)
    assert t0 == 0x123 << 18  # standard ID in ID[28:18], XTD = 0
    assert t1 == 7 << 24 | 1 << 21 | 1 << 20 | 3 << 16  # MM, FDF, BRS, DLC
    assert t2 & 0xFFFFFF == 0x332211  # DB0 in the lowest byte


def test_sizes() -> None:
    assert element_words(8) == 4 and element_words(64) == 18
    assert [data_field_size(c) for c in range(8)] == [8, 12, 16, 20, 24, 32, 48, 64]
    with pytest.raises(ValueError, match="not 10"):
        element_words(10)


def test_standard_filter_decoding_and_kinds() -> None:
    word = 2 << 30 | 1 << 27 | 0x120 << 16 | 0x7F0  # classic: ID & 0x7F0 == 0x120
    f = read_standard_filter(struct.pack("<I", word), 0)
    assert f == Filter(FilterType.CLASSIC, FilterAction.FIFO0, 0x120, 0x7F0)
    assert f.matches(0x12F) and not f.matches(0x130)
    assert Filter(FilterType.RANGE, FilterAction.FIFO1, 0x100, 0x1FF).matches(0x1FF)
    assert Filter(FilterType.DUAL, FilterAction.FIFO0, 0x10, 0x20).matches(0x20)
    assert not Filter(FilterType.DUAL, FilterAction.DISABLE, 0x10, 0x20).matches(0x10)


def test_extended_filter_decoding() -> None:
    f0 = 2 << 29 | 0x18FF0000  # store in FIFO 1
    f1 = 2 << 30 | 0x1FFF0000  # classic mask
    f = read_extended_filter(struct.pack("<II", f0, f1), 0)
    assert f.action is FilterAction.FIFO1 and f.kind is FilterType.CLASSIC
    assert f.matches(0x18FF0042) and not f.matches(0x18FE0042)


def test_first_matching_filter_wins() -> None:
    filters = [
        Filter(FilterType.DISABLED, FilterAction.FIFO0, 0, 0x7FF),
        Filter(FilterType.RANGE, FilterAction.REJECT, 0x300, 0x3FF),
        Filter(FilterType.RANGE, FilterAction.FIFO0, 0x000, 0x7FF),
    ]
    assert first_match(filters, 0x310) == (1, filters[1])
    assert first_match(filters, 0x100) == (2, filters[2])
    assert first_match(filters[:2], 0x100) is None
