"""An emulated ECU bridged to a real python-can bus, paced to wall-clock time."""

from __future__ import annotations

import time
from pathlib import Path

import can
from test_cli import harness

from harness import Machine
from harness.dbc import Dbc
from harness.network import CanFrame, Network
from harness.network.bridge import RealBusBridge, run_paced


def test_ecu_answers_a_python_can_tool_over_a_virtual_bus(firmware: dict[str, Path]) -> None:
    dbc = Dbc.load()
    channel = f"bridge-{time.perf_counter_ns()}"
    with (
        can.Bus(interface="virtual", channel=channel) as tool,
        can.Bus(interface="virtual", channel=channel) as edge,
    ):
        net = Network()
        net.can_bus("can0", 500_000, 2_000_000)
        net.add_ecu("ELC", Machine(firmware["elc"]))
        bridge = RealBusBridge(net, "can0", edge)
        tool.send(dbc.encode("VehicleState", BrakePedal="Pressed").to_message())
        wall = time.monotonic()
        run_paced(net, [bridge], duration_s=0.12)
        wall = time.monotonic() - wall
        seen = []
        while (msg := tool.recv(timeout=0)) is not None:
            seen.append(msg)
    assert wall >= 0.11  # paced: 120 ms of virtual time took at least that long
    assert bridge.injected == 1 and bridge.forwarded == len(seen)
    decoded = [dbc.decode(CanFrame.from_message(m)) for m in seen]
    status = [d for d in decoded if d is not None and d.name == "LightStatus"]
    assert len(status) >= 10  # every 10 ms
    assert status[-1].signals["BrakeLamp"] == 1


def test_cli_bridge_runs_paced_and_reports(firmware: dict[str, Path]) -> None:
    result = harness("run", "--firmware", str(firmware["elc"]), "--can0", "virtual:cli-bridge",
                     "--ms", "150")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "bridge:can0:" in result.stdout and "frames to the real bus" in result.stdout
    assert "ran 150 ms of virtual time" in result.stdout


def test_cli_rejects_a_malformed_bus_spec(firmware: dict[str, Path]) -> None:
    result = harness("run", "--firmware", str(firmware["elc"]), "--can0", "vcan0", "--ms", "10")
    assert result.returncode == 2
    assert "--canN wants INTERFACE:CHANNEL" in result.stderr
