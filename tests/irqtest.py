"""Drive the scenarios of firmware_stubs/tests/irqtest.c."""

from __future__ import annotations

import re
from pathlib import Path

from harness import Machine
from harness.build import FIRMWARE_DIR


def _scenario_numbers() -> dict[str, int]:
    source = (FIRMWARE_DIR / "tests" / "irqtest.c").read_text()
    body = re.search(r"enum \{(.*?)\};", source, re.S)
    assert body is not None
    names = [n.strip() for n in body.group(1).split(",") if n.strip()]
    return {name.removeprefix("SC_"): i for i, name in enumerate(names)}


SCENARIOS = _scenario_numbers()


def start(elf: Path, scenario: str, faults: str = "stop") -> Machine:
    m = Machine(elf, faults=faults)
    m.write_symbol("scenario", SCENARIOS[scenario])
    m.write_symbol("boot_count", 0)
    return m


def run(elf: Path, scenario: str, timeout_ms: float = 5, faults: str = "stop") -> Machine:
    m = start(elf, scenario, faults)
    m.run_until(lambda: m.read_symbol("done") == 1, timeout_ms=timeout_ms)
    return m


def trace(m: Machine) -> str:
    raw = m.read_symbol("trace")
    assert isinstance(raw, bytes)
    return raw[: int(m.read_symbol("trace_len"))].decode()


def words(m: Machine, name: str) -> list[int]:
    symbol = m.image.symbol(name)
    raw = m.read_memory(symbol.address, symbol.size)
    return [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw), 4)]
