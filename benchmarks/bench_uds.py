"""Reprogramming over UDS: a 256 KB image flashed by udsoncan (harness.uds.flash) into the
emulated ECU, over CAN FD (500 kbit/s, 2 Mbit/s data, 64-byte frames) and over classic CAN
(500 kbit/s). Figures: the virtual time of the whole sequence, the bus's physical limit for
the transfer (its consecutive frames back to back, nothing else), the bus time all frames took,
and the wall time. In `make test` (benchmarks disabled) a 32 KB image keeps the smoke run short.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from harness.frames.can import CanFrame
from harness.uds import uds_client
from harness.uds.flash import flash
from tests.uds_rig import Rig, make_rig, sign

IMAGE_KB = 256
SMOKE_KB = 32
CASES = {  # name: (CAN FD, nominal bit rate, data bit rate)
    "fd-500k-2M": (True, 500_000, 2_000_000),
    "classic-500k": (False, 500_000, 500_000),
}


@pytest.fixture(scope="module")
def bank_a(firmware: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench-uds") / "a.bin"
    path.write_bytes(sign(firmware["elc_a"], "A", (1, 0, 0), 1))
    return path


def _limit_ns(rig: Rig, size: int, fd: bool) -> int:
    """The transfer's consecutive frames back to back: the fastest the bus carries `size`."""
    per_frame = 63 if fd else 7
    frame = CanFrame(0x7E0, b"\x21" + b"\x55" * per_frame, is_fd=fd, brs=fd)
    return -(-size // per_frame) * rig.network.bus("can0").duration_ns(frame)


@pytest.mark.parametrize("case", list(CASES))
def test_flash_an_image_over_uds(benchmark: Any, firmware: dict[str, Path], bank_a: Path,
                                 case: str) -> None:  # fmt: skip
    fd, bitrate, data_bitrate = CASES[case]
    kb = SMOKE_KB if getattr(benchmark, "disabled", False) else IMAGE_KB
    data = sign(firmware["elc_b"], "B", (1, 1, 0), 2, pad_to=kb * 1024 - 512 - 16)
    assert len(data) == kb * 1024
    runs: list[tuple[Rig, int, float]] = []

    def setup() -> tuple[tuple[Rig], dict[str, Any]]:
        return (make_rig(firmware, bank_a, bitrate, data_bitrate),), {}

    def one(rig: Rig) -> None:
        start_ns, start = rig.network.now_ns, time.perf_counter()
        with uds_client(rig.network, fd=fd) as client:
            flash(client, data)
        runs.append((rig, rig.network.now_ns - start_ns, time.perf_counter() - start))

    benchmark.pedantic(one, setup=setup, rounds=1 if kb == SMOKE_KB else 3, iterations=1)
    rig, virtual_ns, _ = runs[-1]
    bus = rig.network.bus("can0")
    busy_ns = sum(bus.duration_ns(f) for f in rig.spy.received
                  if f.arbitration_id in (0x7E0, 0x7E8))  # fmt: skip
    limit_ns = _limit_ns(rig, len(data), fd)
    assert limit_ns < busy_ns < virtual_ns
    if getattr(benchmark, "stats", None):
        benchmark.extra_info.update(
            image_kb=kb, virtual_ms=round(virtual_ns / 1e6, 1),
            bus_limit_ms=round(limit_ns / 1e6, 1), diag_frames_bus_ms=round(busy_ns / 1e6, 1),
            virtual_over_limit=round(virtual_ns / limit_ns, 2),
            virtual_kb_per_s=round(kb / (virtual_ns / 1e9), 1),
            real_time_factor=round(virtual_ns / 1e9 / float(benchmark.stats.stats.median), 2),
        )  # fmt: skip
