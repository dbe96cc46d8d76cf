"""The CAN message loop end to end: tester -> bus -> M_CAN -> firmware ISR -> bus -> tester.

The echo firmware answers each frame from its RX interrupt. "spaced": one frame per
wake-up (RF0N interrupt), waiting for its answer; "burst": 8 frames back to back, taken by
the firmware in one wake-up (RF0W, the RX FIFO's watermark at its depth of 8) and answered
together.
Reference: the same number of frames through python-can's stock `virtual` bus (no
emulation at all), measured in the same run. Figures: frames through the loop (requests +
answers) per wall second, their ratio to the reference, and the real-time factor against a
saturated 1 Mbit/s classic bus (~9,009 frames/s).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import can
import pytest

from harness import Machine
from harness.network import CanFrame, Network, PythonNode

ROUNDS_FRAMES = 160  # requests per benchmark round
SATURATED_1MBIT = 9_009
ECHO_CONTROL = 0x7F0


def _median(benchmark: Any) -> float:
    stats = getattr(benchmark, "stats", None)
    return float(stats.stats.median) if stats else float("nan")


def _virtual_bus_reference(n: int, data: bytes, fd: bool) -> float:
    """Seconds for n send + receive pairs over python-can's virtual bus."""
    channel = f"bench-{time.perf_counter_ns()}"
    with (
        can.Bus(interface="virtual", channel=channel, receive_own_messages=False) as a,
        can.Bus(interface="virtual", channel=channel, receive_own_messages=False) as b,
    ):
        msg = can.Message(arbitration_id=0x100, data=data, is_fd=fd, bitrate_switch=fd)
        start = time.perf_counter()
        for _ in range(n):
            a.send(msg)
            b.recv(1.0)
        return time.perf_counter() - start


def _rig(elf: Path, batch: bool) -> tuple[Network, PythonNode]:
    net = Network()
    net.can_bus("can0", bitrate=500_000, data_bitrate=2_000_000)
    net.add_ecu("echo", Machine(elf))
    tester = PythonNode("tester", net.bus("can0"))
    net.run_for(ms=1)
    tester.send(CanFrame(ECHO_CONTROL, bytes([int(batch)])))  # interrupt per frame or per 8
    net.run_for(ms=1)
    return net, tester


@pytest.mark.parametrize("kind", ["classic", "fd"])
@pytest.mark.parametrize("pattern", ["spaced", "burst"])
def test_message_loop(benchmark: Any, firmware: dict[str, Path], kind: str, pattern: str) -> None:
    fd = kind == "fd"
    data = bytes(range(64)) if fd else bytes(range(8))
    batch = 8 if pattern == "burst" else 1
    net, tester = _rig(firmware["canecho"], batch > 1)

    rounds = 0

    def run() -> None:
        nonlocal rounds
        rounds += 1
        for _ in range(ROUNDS_FRAMES // batch):
            expected = len(tester.received) + batch
            for i in range(batch):
                tester.send(CanFrame(0x200 + 2 * i, data, is_fd=fd, brs=fd))
            net.run_until(lambda e=expected: len(tester.received) >= e, timeout_ms=50)

    virtual_start = net.now_ns
    benchmark.pedantic(run, rounds=15, iterations=1)
    assert len(tester.received) == rounds * ROUNDS_FRAMES  # every request was answered
    if not getattr(benchmark, "stats", None):
        return  # --benchmark-disable (make test): the loop ran once as a smoke test
    frames = 2 * ROUNDS_FRAMES  # requests and answers
    per_s = frames / _median(benchmark)
    reference = frames / _virtual_bus_reference(ROUNDS_FRAMES, data, fd)
    virtual_s = (net.now_ns - virtual_start) / 1e9 / rounds
    benchmark.extra_info.update(
        frames_per_s=round(per_s),
        python_can_virtual_frames_per_s=round(reference),
        ratio_to_python_can_virtual=round(per_s / reference, 2),
        real_time_factor_vs_1mbit=round(per_s / SATURATED_1MBIT, 2),
        virtual_ms_per_round=round(virtual_s * 1e3, 2),
    )
