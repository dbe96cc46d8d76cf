"""Which messages are E2E-protected, and how: from DBC attributes or a small TOML file.

DBC: message attributes `E2EProfile` (1, 2 or 5) and `E2EDataID`; the counter and CRC are
the message's signals named `*_Counter` and `*_CRC`, and their positions give the profile's
offsets; profile 2's 16 data IDs are `E2EDataID + counter` (low bytes). A TOML file, one
table per message, adds to or overrides the DBC:

    [VehicleState]
    profile = 1
    data_id = 0x100
    data_id_mode = "BOTH"          # profile 1: BOTH, ALT, LOW, NIBBLE
    counter_signal = "VehicleState_Counter"
    crc_signal = "VehicleState_CRC"
    max_delta_counter = 1
    data_ids = [1, 2, ...]         # profile 2: 16 of them
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from cantools.database.can import Message, Signal

from harness.dbc import Dbc
from harness.e2e.profiles import DataIdMode, Profile, Profile1, Profile2, Profile5
from harness.errors import HarnessError


class E2EConfigError(HarnessError):
    """An E2E configuration that does not fit the message it protects."""


def _signal(message: Message, name: str | None, suffix: str, where: str) -> Signal:
    if name is not None:
        for s in message.signals:
            if s.name == name:
                return s
        raise E2EConfigError(f"{where}: {message.name} has no signal {name!r}")
    found = [s for s in message.signals if s.name.endswith(suffix)]
    if len(found) != 1:
        raise E2EConfigError(f"{where}: {message.name} needs exactly one signal named "
                             f"'*{suffix}' (found {len(found)}); name it in the "
                             f"config")  # fmt: skip
    return found[0]


def _profile(message: Message, entry: dict[str, Any], where: str) -> Profile:
    number = entry.get("profile")
    if number not in (1, 2, 5):
        raise E2EConfigError(f"{where}: {message.name}: profile must be 1, 2 or 5, not {number!r}")
    counter = _signal(message, entry.get("counter_signal"), "_Counter", where)
    crc = _signal(message, entry.get("crc_signal"), "_CRC", where)
    max_delta = int(entry.get("max_delta_counter", 1))
    if crc.byte_order != "little_endian" or crc.start % 8:
        raise E2EConfigError(f"{where}: {message.name}.{crc.name} must start on a byte boundary")
    data_id = int(entry.get("data_id", 0))
    want = {1: (8, 4), 2: (8, 4), 5: (16, 8)}[number]
    if (crc.length, counter.length) != want:
        raise E2EConfigError(f"{where}: {message.name}: profile {number} needs a {want[0]}-bit "
                             f"CRC and a {want[1]}-bit counter, not {crc.length} and "
                             f"{counter.length}")  # fmt: skip
    if number == 1:
        mode = entry.get("data_id_mode", "BOTH")
        try:
            data_id_mode = DataIdMode[mode]
        except KeyError:
            modes = ", ".join(m.name for m in DataIdMode)
            raise E2EConfigError(f"{where}: {message.name}: data_id_mode {mode!r} is not one "
                                 f"of {modes}") from None  # fmt: skip
        return Profile1(data_id, data_id_mode, max_delta, crc_offset=crc.start // 8,
                        counter_offset=counter.start)  # fmt: skip
    if number == 2:
        if crc.start != 0 or counter.start != 8:
            raise E2EConfigError(f"{where}: {message.name}: profile 2 has its CRC in byte 0 "
                                 f"and its counter in bits 8..11")  # fmt: skip
        ids = entry.get("data_ids", [(data_id + n) & 0xFF for n in range(16)])
        return Profile2(tuple(int(i) for i in ids), max_delta)
    if counter.start != crc.start + 16:
        raise E2EConfigError(f"{where}: {message.name}: profile 5's counter follows its CRC")
    return Profile5(data_id, max_delta, offset=crc.start // 8)


def from_dbc(dbc: Dbc) -> dict[str, Profile]:
    """The E2E protection the DBC's `E2EProfile` / `E2EDataID` attributes declare."""
    out: dict[str, Profile] = {}
    for message in dbc.database.messages:
        attrs = message.dbc.attributes if message.dbc is not None else {}
        if "E2EProfile" not in attrs or not attrs["E2EProfile"].value:
            continue
        entry = {"profile": attrs["E2EProfile"].value,
                 "data_id": attrs["E2EDataID"].value if "E2EDataID" in attrs else 0}  # fmt: skip
        out[message.name] = _profile(message, entry, str(dbc.source))
    return out


def load(path: str | Path, dbc: Dbc) -> dict[str, Profile]:
    """The DBC's E2E protection, with the TOML file's tables added or overriding it."""
    path = Path(path)
    try:
        tables = tomllib.loads(path.read_text())
    except OSError as err:
        raise E2EConfigError(f"{path}: cannot read: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise E2EConfigError(f"{path}: {err}") from err
    out = from_dbc(dbc)
    for name, entry in tables.items():
        if not isinstance(entry, dict):
            raise E2EConfigError(f"{path}: {name} must be a table ([{name}])")
        try:
            message = dbc.message(name)
        except HarnessError as err:
            raise E2EConfigError(f"{path}: {err}") from err
        out[name] = _profile(message, entry, str(path))
    return out
