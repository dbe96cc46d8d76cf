"""The bit rates a trace was recorded at, where its format says so.

Replaying a 1 Mbit/s recording on a 500 kbit/s bus delays and bunches the stimulus, so the
replay takes the bus's rates from the trace when the file records them:

- Vector ASC `CANFD` lines end with the bit-timing configuration of both phases
  (`BitTimingConfArb`, `BitTimingConfData`): bytes, from the low end, of the controller clock
  in MHz, the prescaler, the time quanta per bit and the sample point in percent; the rate is
  clock / (prescaler x quanta). Classic `CAN` lines carry no configuration.
- PEAK TRC 2.0 files name the bit rate in their header (`;   Connection   Bit rate`), for
  CAN FD both phases (`Nominal 1 MBit/s, Data 2 Mbit/s`).

Other formats (BLF as python-can reads it, candump, CSV, ...) do not record rates; the caller
falls back to its defaults.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from harness.replay.reader import asc_fd_line, trace_suffix

SCAN_LINES = 20_000  # how far into a text trace to look for a line that states the rates


@dataclass(frozen=True)
class BitRates:
    nominal: int
    data: int | None = None  # CAN FD data phase; None: not recorded


def recorded_bitrates(path: str | Path) -> dict[int | None, BitRates]:
    """Rates by trace channel as python-can numbers them (ASC: from 0); key None: every
    channel. Empty if the file does not record them."""
    path = Path(path)
    suffix = trace_suffix(path)
    if suffix not in (".asc", ".trc") or not path.is_file():
        return {}
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as file:
        lines = islice(file, SCAN_LINES)
        return _asc_rates(lines) if suffix == ".asc" else _trc_rates(lines)


def _asc_rates(lines: Iterator[str]) -> dict[int | None, BitRates]:
    rates: dict[int | None, BitRates] = {}
    for line in lines:
        fd = asc_fd_line(line)
        if fd is None or not fd.channel.isdigit() or int(fd.channel) - 1 in rates:
            continue
        if fd.trailer_count != 8:  # duration, length, flags, CRC, 4 timing words; else unsure
            continue
        try:
            nominal = vector_bit_timing_rate(int(fd.trailer[4], 16))
            data = vector_bit_timing_rate(int(fd.trailer[5], 16))
        except ValueError:
            continue
        channel = int(fd.channel) - 1
        if nominal is not None:
            rates[channel] = BitRates(nominal, data if data is not None and data >= nominal
                                      else None)  # fmt: skip
    return rates


def vector_bit_timing_rate(config: int) -> int | None:
    """The bit rate a Vector bit-timing word describes, or None if it is not plausible."""
    clock_mhz, prescaler, quanta = config & 0xFF, (config >> 8) & 0xFF, (config >> 16) & 0xFF
    if not (clock_mhz and prescaler and quanta):
        return None
    rate = clock_mhz * 1_000_000 // (prescaler * quanta)
    return rate if 5_000 <= rate <= 15_000_000 else None


_TRC_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*([km]?)bit/s", re.I)
_TRC_NOMINAL = re.compile(r"nominal\s+" + _TRC_RATE.pattern, re.I)
_TRC_DATA = re.compile(r"data\s+" + _TRC_RATE.pattern, re.I)


def _trc_rates(lines: Iterator[str]) -> dict[int | None, BitRates]:
    """The connection table: TRC 2.0 has one row (every channel), TRC 2.1 a row per bus,
    numbered as python-can numbers TRC channels."""
    rates: dict[int | None, BitRates] = {}
    in_table = False
    for line in lines:
        if not line.startswith(";"):
            break  # the header is over
        text = line.lstrip(";").strip()
        if "bit rate" in text.lower() and "connection" in text.lower():
            in_table = True
        elif in_table and text.startswith("-"):
            if rates:
                break  # the table's closing rule
        elif in_table and (any_rate := _TRC_RATE.search(text)):
            # "500 kbit/s", or for CAN FD "Nominal 1 MBit/s, Data 2 Mbit/s"
            nominal = _TRC_NOMINAL.search(text) or any_rate
            data = _TRC_DATA.search(text)
            bus = text.split()[0]
            rates[int(bus) if bus.isdigit() else None] = BitRates(
                _rate(nominal), _rate(data) if data else None)  # fmt: skip
    return rates


def _rate(found: re.Match[str]) -> int:
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[found.group(2).lower()]
    return round(float(found.group(1)) * scale)
