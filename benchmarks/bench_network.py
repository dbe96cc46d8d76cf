"""Throughput per frame as ECUs and buses are added: 1 ECU on 1 bus, 2 ECUs on 2 buses, 4 ECUs
on 2 buses, every bus kept busy.

Each ECU runs the echo firmware on its bus (ECU i on bus i % buses): every frame it hears goes
back with ID + 1, taken in bursts of 8 (one RX interrupt per burst). Each bus has a tester that
sends a burst of 8 requests and waits for every ECU on that bus to answer all of them; the
buses run side by side in one network. Figure: frames carried (requests and answers, all
buses) per wall second; flat across the three networks means the cost per frame does not grow
with the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import Machine
from harness.network import CanFrame, Network, PythonNode

ECHO_CONTROL = 0x7F0
BURST = 8
ROUNDS = 20


@pytest.mark.parametrize(("ecus", "buses"), [(1, 1), (2, 2), (4, 2)])
def test_frames_per_second_as_the_network_grows(
    benchmark: Any, firmware: dict[str, Path], ecus: int, buses: int
) -> None:
    net = Network()
    for b in range(buses):
        net.can_bus(f"can{b}", bitrate=500_000, data_bitrate=2_000_000)
    for e in range(ecus):
        net.add_ecu(f"echo{e}", Machine(firmware["canecho"]), can0=f"can{e % buses}")
    testers = [PythonNode(f"tester{b}", net.bus(f"can{b}")) for b in range(buses)]
    listeners = [sum(1 for e in range(ecus) if e % buses == b) for b in range(buses)]
    net.run_for(ms=1)
    for tester in testers:
        tester.send(CanFrame(ECHO_CONTROL, b"\x01"))  # batch mode: one interrupt per 8 frames
    net.run_for(ms=1)
    data = bytes(range(8))

    pairs = list(zip(testers, listeners, strict=True))

    def answered(expected: list[int]) -> bool:
        return all(len(t.received) >= n for t, n in zip(testers, expected, strict=True))

    def run() -> None:
        for _ in range(ROUNDS):
            expected = [len(t.received) + BURST * n for t, n in pairs]
            for tester in testers:
                for i in range(BURST):
                    tester.send(CanFrame(0x200 + 2 * i, data))
            net.run_until(lambda e=expected: answered(e), timeout_ms=100)

    benchmark.pedantic(run, rounds=7, iterations=1)
    frames = ROUNDS * BURST * sum(1 + n for n in listeners)  # requests + every answer
    assert answered([BURST * ROUNDS * n for n in listeners])
    stats = getattr(benchmark, "stats", None)
    if stats:
        median = float(stats.stats.median)
        benchmark.extra_info.update(frames_per_round=frames, frames_per_s=round(frames / median))
