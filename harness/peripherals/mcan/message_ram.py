"""M_CAN message RAM elements, as the Bosch M_CAN user's manual lays them out.

The message RAM is plain mapped memory shared with the firmware; the controller model reads
and writes these elements in place. Words are little-endian; data byte k of an element sits
in bits 8*(k%4) of word 2 + k//4.

  TX buffer element:  T0 = ESI[31] XTD[30] RTR[29] ID[28:0]   (a standard ID in ID[28:18])
                      T1 = MM[31:24] EFC[23] FDF[21] BRS[20] DLC[19:16]
  RX FIFO/buffer:     R0 = ESI[31] XTD[30] RTR[29] ID[28:0]
                      R1 = ANMF[31] FIDX[30:24] FDF[21] BRS[20] DLC[19:16] RXTS[15:0]
  TX event element:   E0 = as R0;  E1 = MM[31:24] ET[23:22] FDF[21] BRS[20] DLC[19:16] TXTS[15:0]
  standard filter:    S0 = SFT[31:30] SFEC[29:27] SFID1[26:16] SFID2[10:0]
  extended filter:    F0 = EFEC[31:29] EFID1[28:0];  F1 = EFT[31:30] EFID2[28:0]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from harness.frames.can import FD_LENGTHS, CanFrame
from harness.regs.dsl import Field, Register

HEADER_WORDS = 2

# The element header words, declared once: this model reads and writes them through these
# fields, and `harness regs` exports them to the C header (MCAN_ELEMENT_T0_XTD_Pos, ...) for
# the firmware's driver.
_ID_WORD = (Field("ESI", 31), Field("XTD", 30), Field("RTR", 29), Field("ID", 0, 29))
_FORMAT = (Field("FDF", 21), Field("BRS", 20), Field("DLC", 16, 4))
ELEMENT_WORDS = (
    Register("T0", 0, _ID_WORD, "TX buffer element, word 0 (a standard ID in ID[28:18])"),
    Register("T1", 4, (Field("MM", 24, 8), Field("EFC", 23), *_FORMAT), "TX element, word 1"),
    Register("R0", 0, _ID_WORD, "RX element, word 0"),
    Register("R1", 4, (Field("ANMF", 31), Field("FIDX", 24, 7), *_FORMAT, Field("RXTS", 0, 16)),
             "RX element, word 1"),
    Register("E0", 0, _ID_WORD, "TX event element, word 0"),
    Register("E1", 4, (Field("MM", 24, 8), Field("ET", 22, 2), *_FORMAT, Field("TXTS", 0, 16)),
             "TX event element, word 1"),
)
_T0, _T1, _R0, _R1, _E0, _E1 = ELEMENT_WORDS
STANDARD_ID_LSB = 18  # a standard ID sits in ID[28:18]
# compiled from the declarations: the model stores and reads elements on every frame
_ID_CODEC = _T0.codec("ESI", "XTD", "RTR", "ID")
_T1_CODEC = _T1.codec("MM", "EFC", "FDF", "BRS", "DLC")
_R1_CODEC = _R1.codec("ANMF", "FIDX", "FDF", "BRS", "DLC", "RXTS")
_E1_CODEC = _E1.codec("MM", "ET", "FDF", "BRS", "DLC", "TXTS")


class FilterType(IntEnum):
    RANGE = 0  # SFID1 <= ID <= SFID2
    DUAL = 1  # ID == SFID1 or ID == SFID2
    CLASSIC = 2  # ID & SFID2 == SFID1 & SFID2 (SFID2 is the mask)
    DISABLED = 3


class FilterAction(IntEnum):
    DISABLE = 0
    FIFO0 = 1
    FIFO1 = 2
    REJECT = 3
    PRIORITY = 4
    PRIORITY_FIFO0 = 5
    PRIORITY_FIFO1 = 6
    RX_BUFFER = 7


@dataclass(frozen=True, slots=True)
class Filter:
    kind: FilterType
    action: FilterAction
    id1: int
    id2: int

    def matches(self, ident: int) -> bool:
        if self.action is FilterAction.DISABLE or self.kind is FilterType.DISABLED:
            return False
        if self.kind is FilterType.RANGE:
            return self.id1 <= ident <= self.id2
        if self.kind is FilterType.DUAL:
            return ident in (self.id1, self.id2)
        return ident & self.id2 == self.id1 & self.id2


def element_words(data_field_bytes: int) -> int:
    """Words per TX/RX element for a configured data field size (8..64 bytes)."""
    if data_field_bytes not in (8, 12, 16, 20, 24, 32, 48, 64):
        raise ValueError(
            f"M_CAN data fields are 8/12/16/20/24/32/48/64 bytes, not {data_field_bytes}"
        )
    return HEADER_WORDS + data_field_bytes // 4


def data_field_size(code: int) -> int:
    """The RXESC/TXESC size code (0..7) as bytes."""
    return (8, 12, 16, 20, 24, 32, 48, 64)[code & 7]


def _length(dlc: int, fd: bool) -> int:
    return FD_LENGTHS[dlc] if fd else min(dlc, 8)


def read_tx_element(ram: bytes | bytearray | memoryview, offset: int) -> tuple[CanFrame, int, bool]:
    """(frame, message marker, store TX event) from a TX buffer element at byte `offset`."""
    t0, t1 = struct.unpack_from("<II", ram, offset)
    esi, extended, rtr, ident = _ID_CODEC.unpack(t0)
    marker, event, fdf, brs, dlc = _T1_CODEC.unpack(t1)
    ident = ident if extended else ident >> STANDARD_ID_LSB
    fd = fdf == 1
    remote = rtr == 1 and not fd
    length = _length(dlc, fd)
    data = b"" if remote else bytes(ram[offset + 8 : offset + 8 + length])
    frame = CanFrame(
        ident,
        data,
        is_extended=extended == 1,
        is_fd=fd,
        brs=fd and brs == 1,
        esi=fd and esi == 1,
        is_remote=remote,
        remote_length=min(dlc, 8) if remote else 0,
    )
    return frame, marker, bool(event)


def write_tx_element(ram: bytearray | memoryview, offset: int, frame: CanFrame,
                     marker: int = 0, event: bool = False) -> None:  # fmt: skip
    """Lay out `frame` as a TX buffer element (what firmware does; tests use it)."""
    t1 = _T1_CODEC.pack(marker & 0xFF, int(event), int(frame.is_fd), int(frame.brs), frame.dlc)
    struct.pack_into("<II", ram, offset, _id_word(frame), t1)
    ram[offset + 8 : offset + 8 + len(frame.data)] = frame.data


def write_rx_element(ram: bytearray | memoryview, offset: int, frame: CanFrame,
                     filter_index: int | None, timestamp: int) -> None:  # fmt: skip
    """Store a received frame; `filter_index` None means accepted as non-matching (ANMF)."""
    anmf, fidx = (1, 0) if filter_index is None else (0, filter_index & 0x7F)
    r1 = _R1_CODEC.pack(anmf, fidx, int(frame.is_fd), int(frame.brs), frame.dlc,
                        timestamp & 0xFFFF)  # fmt: skip
    struct.pack_into("<II", ram, offset, _id_word(frame), r1)
    ram[offset + 8 : offset + 8 + len(frame.data)] = frame.data


def read_rx_element(
    ram: bytes | bytearray | memoryview, offset: int
) -> tuple[CanFrame, int | None, int]:
    """(frame, filter index or None, RX timestamp) of an RX element (tests, tools)."""
    frame, _, _ = read_tx_element(ram, offset)  # R0/R1 share T0/T1's ID, DLC, FDF, BRS bits
    anmf, fidx, _fdf, _brs, _dlc, stamp = _R1_CODEC.unpack(struct.unpack_from("<I", ram,
                                                                                offset + 4)[0])
    return frame, None if anmf else fidx, stamp


TX_EVENT_BYTES = 8
EVENT_TRANSMITTED = 1  # E1.ET: a TX event (2 would be "sent in spite of cancellation")


def write_tx_event(ram: bytearray | memoryview, offset: int, frame: CanFrame, marker: int,
                   timestamp: int) -> None:  # fmt: skip
    """Store a TX event element for a frame the controller sent."""
    e1 = _E1_CODEC.pack(marker & 0xFF, EVENT_TRANSMITTED, int(frame.is_fd), int(frame.brs),
                        frame.dlc, timestamp & 0xFFFF)  # fmt: skip
    struct.pack_into("<II", ram, offset, _id_word(frame), e1)


def read_tx_event(ram: bytes | bytearray | memoryview, offset: int) -> tuple[int, int, int, int]:
    """(ID, message marker, event type, TX timestamp) of a TX event element."""
    e0, e1 = struct.unpack_from("<II", ram, offset)
    _esi, extended, _rtr, ident = _ID_CODEC.unpack(e0)
    marker, kind, _fdf, _brs, _dlc, stamp = _E1_CODEC.unpack(e1)
    return (ident if extended else ident >> STANDARD_ID_LSB), marker, kind, stamp


def _id_word(frame: CanFrame) -> int:
    ident = frame.arbitration_id if frame.is_extended else frame.arbitration_id << STANDARD_ID_LSB
    return _ID_CODEC.pack(int(frame.esi), int(frame.is_extended), int(frame.is_remote), ident)


def read_standard_filter(ram: bytes | bytearray | memoryview, offset: int) -> Filter:
    s0 = struct.unpack_from("<I", ram, offset)[0]
    return Filter(FilterType(s0 >> 30), FilterAction(s0 >> 27 & 7), s0 >> 16 & 0x7FF, s0 & 0x7FF)


def read_extended_filter(ram: bytes | bytearray | memoryview, offset: int) -> Filter:
    f0, f1 = struct.unpack_from("<II", ram, offset)
    return Filter(FilterType(f1 >> 30), FilterAction(f0 >> 29), f0 & 0x1FFFFFFF, f1 & 0x1FFFFFFF)


def first_match(filters: list[Filter], ident: int) -> tuple[int, Filter] | None:
    """The first enabled filter matching `ident`, in list order (as M_CAN scans them)."""
    for index, f in enumerate(filters):
        if f.matches(ident):
            return index, f
    return None
