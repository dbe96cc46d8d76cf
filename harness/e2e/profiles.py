"""AUTOSAR E2E profiles 1, 2 and 5: protect a payload (counter + CRC) and check one.

Layouts (the AUTOSAR defaults; profiles 1 and 5 take the offsets AUTOSAR lets you configure):
  Profile 1: CRC-8 SAE J1850 (poly 0x1D) in byte `crc_offset` (default 0); 4-bit counter
             (0..14) at bit `counter_offset` (default 8: byte 1's low nibble); the 16-bit data
             ID enters the CRC by `data_id_mode` (both bytes, alternating by counter parity,
             low byte only, or low byte with the high nibble carried at `nibble_offset`).
  Profile 2: CRC-8H2F (poly 0x2F) in byte 0; 4-bit counter (0..15) in the low nibble of
             byte 1; the data ID is the counter's entry in a list of 16.
  Profile 5: CRC-16 CCITT-FALSE (poly 0x1021) little-endian at byte `offset` (default 0),
             8-bit counter right after it; the 16-bit data ID enters the CRC after the data,
             low byte first.
The CRC covers every payload byte but the CRC field, then the data ID as each profile says.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


def _crc8(data: bytes, poly: int, register: int) -> int:
    for byte in data:
        register ^= byte
        for _ in range(8):
            register = (
                ((register << 1) ^ poly) & 0xFF if register & 0x80 else (register << 1) & 0xFF
            )
    return register


def crc8_sae_j1850(data: bytes) -> int:
    """CRC-8 SAE J1850 as AUTOSAR's Crc library defines it (init 0xFF, final XOR 0xFF)."""
    return _crc8(data, 0x1D, 0xFF) ^ 0xFF


def crc8h2f(data: bytes) -> int:
    """CRC-8H2F (CRC-8/AUTOSAR: poly 0x2F, init 0xFF, final XOR 0xFF)."""
    return _crc8(data, 0x2F, 0xFF) ^ 0xFF


def crc16_ccitt_false(data: bytes, register: int = 0xFFFF) -> int:
    for byte in data:
        register ^= byte << 8
        for _ in range(8):
            register = (
                ((register << 1) ^ 0x1021) & 0xFFFF
                if register & 0x8000
                else (register << 1) & 0xFFFF
            )
    return register


class DataIdMode(Enum):
    BOTH = 0
    ALT = 1
    LOW = 2
    NIBBLE = 3


def _nibble(payload: bytes, bit: int) -> int:
    return payload[bit // 8] >> (bit % 8) & 0x0F


def _set_nibble(data: bytearray, bit: int, value: int) -> None:
    shift = bit % 8
    data[bit // 8] = (data[bit // 8] & ~(0x0F << shift) & 0xFF) | (value & 0x0F) << shift


@dataclass(frozen=True)
class Profile1:
    data_id: int
    data_id_mode: DataIdMode = DataIdMode.BOTH
    max_delta_counter: int = 1
    crc_offset: int = 0  # byte
    counter_offset: int = 8  # bit (a nibble)
    nibble_offset: int = 12  # bit (a nibble), for DataIdMode.NIBBLE
    counter_modulo = 15  # 15 is not a valid counter value

    @property
    def crc_byte(self) -> int:
        return self.crc_offset

    def crc(self, payload: bytes, counter: int) -> int:
        low, high = self.data_id & 0xFF, self.data_id >> 8 & 0xFF
        mode = self.data_id_mode
        if mode is DataIdMode.BOTH:
            prefix = bytes([low, high])
        elif mode is DataIdMode.ALT:
            prefix = bytes([low if counter % 2 == 0 else high])
        elif mode is DataIdMode.LOW:
            prefix = bytes([low])
        else:  # NIBBLE: the high byte's low nibble travels in the payload instead
            prefix = bytes([low, 0])
        # AUTOSAR chains Crc_CalculateCRC8 from start value 0x00 and inverts the result
        # again: a plain CRC-8 with register 0x00 and no final XOR.
        at = self.crc_offset
        return _crc8(prefix + bytes(payload[:at]) + bytes(payload[at + 1 :]), 0x1D, 0x00)

    def protect(self, payload: bytes, counter: int) -> bytes:
        data = bytearray(payload)
        _set_nibble(data, self.counter_offset, counter % self.counter_modulo)
        if self.data_id_mode is DataIdMode.NIBBLE:
            _set_nibble(data, self.nibble_offset, self.data_id >> 8)
        data[self.crc_offset] = self.crc(bytes(data), counter % self.counter_modulo)
        return bytes(data)

    def counter(self, payload: bytes) -> int:
        return _nibble(payload, self.counter_offset)

    def crc_ok(self, payload: bytes) -> bool:
        counter = self.counter(payload)
        if counter >= self.counter_modulo:
            return False
        nibble = _nibble(payload, self.nibble_offset)
        if self.data_id_mode is DataIdMode.NIBBLE and nibble != self.data_id >> 8 & 0x0F:
            return False
        return payload[self.crc_offset] == self.crc(payload, counter)


@dataclass(frozen=True)
class Profile2:
    data_ids: tuple[int, ...]  # 16 data IDs, one per counter value
    max_delta_counter: int = 1
    counter_modulo = 16
    crc_byte = 0

    def __post_init__(self) -> None:
        if len(self.data_ids) != 16:
            raise ValueError(
                f"profile 2 needs 16 data IDs (one per counter), not {len(self.data_ids)}"
            )

    def crc(self, payload: bytes, counter: int) -> int:
        return crc8h2f(bytes(payload[1:]) + bytes([self.data_ids[counter] & 0xFF]))

    def protect(self, payload: bytes, counter: int) -> bytes:
        data = bytearray(payload)
        counter %= self.counter_modulo
        data[1] = (data[1] & 0xF0) | counter
        data[0] = self.crc(bytes(data), counter)
        return bytes(data)

    def counter(self, payload: bytes) -> int:
        return payload[1] & 0x0F

    def crc_ok(self, payload: bytes) -> bool:
        return payload[0] == self.crc(payload, self.counter(payload))


@dataclass(frozen=True)
class Profile5:
    data_id: int
    max_delta_counter: int = 1
    offset: int = 0  # byte of the header (CRC low, CRC high, counter)
    counter_modulo = 256

    @property
    def crc_byte(self) -> int:
        return self.offset  # the CRC's low byte

    def crc(self, payload: bytes) -> int:
        at = self.offset
        crc = crc16_ccitt_false(bytes(payload[:at]) + bytes(payload[at + 2 :]))
        return crc16_ccitt_false(bytes([self.data_id & 0xFF, self.data_id >> 8 & 0xFF]), crc)

    def protect(self, payload: bytes, counter: int) -> bytes:
        data = bytearray(payload)
        data[self.offset + 2] = counter % self.counter_modulo
        crc = self.crc(bytes(data))
        data[self.offset], data[self.offset + 1] = crc & 0xFF, crc >> 8
        return bytes(data)

    def counter(self, payload: bytes) -> int:
        return payload[self.offset + 2]

    def crc_ok(self, payload: bytes) -> bool:
        return payload[self.offset] | payload[self.offset + 1] << 8 == self.crc(payload)


Profile = Profile1 | Profile2 | Profile5
