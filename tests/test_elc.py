"""The exterior-light controller firmware against its DBC, on the simulated CAN FD bus."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from harness import Machine
from harness.dbc import Dbc, Decoded
from harness.e2e.config import from_dbc
from harness.network import Network, PythonNode
from harness.restbus import RestBus

DBC = Dbc.load()


class Rig:
    """The ELC on can0 with a living vehicle around it: VehicleState every 10 ms from the
    rest-bus (E2E-protected); LightCommand is sent by the tests when they need it."""

    def __init__(self, elf: Path) -> None:
        self.net = Network()
        self.net.can_bus("can0", bitrate=500_000, data_bitrate=2_000_000)
        self.ecu = self.net.add_ecu("elc", Machine(elf))
        self.tester = PythonNode("tester", self.net.bus("can0"))
        self.net.run_for(ms=2)  # boot
        self.vehicle = RestBus(self.net, DBC, "ELC", e2e=from_dbc(DBC))
        self.vehicle.stop("LightCommand")
        self.net.run_for(ms=30)

    def send(self, name: str, **signals: object) -> None:
        self.tester.send(DBC.encode(name, **signals))

    def seen(self, name: str, since_ns: int = 0) -> list[Decoded]:
        out = []
        for frame in self.tester.received:
            decoded = DBC.decode(frame)
            if decoded and decoded.name == name and frame.timestamp_ns >= since_ns:
                out.append(decoded)
        return out


@pytest.fixture
def rig(firmware: dict[str, Path]) -> Rig:
    return Rig(firmware["elc"])


def test_brake_pedal_lights_the_brake_lamp_within_20_ms(rig: Rig) -> None:
    start = rig.net.now_ns
    rig.vehicle.set("VehicleState", Speed=50, BrakePedal="Pressed")

    def lit() -> list[Decoded]:
        return [s for s in rig.seen("LightStatus", start) if s.signals["BrakeLamp"] == 1]

    rig.net.run_until(lambda: bool(lit()), timeout_ms=20)
    pressed = [d for d in rig.seen("VehicleState", start) if d.signals["BrakePedal"] == "Pressed"]
    assert lit()[0].timestamp_ns - pressed[0].timestamp_ns < 1_000_000  # on change, at once
    assert rig.ecu.gpio("GPIOA").pin(0) == 1
    assert rig.ecu.read_symbol("vehicle_speed_raw") == 5000  # 50 km/h at 0.01 km/h
    rig.vehicle.set("VehicleState", Speed=50, BrakePedal="Released")
    rig.net.run_for(ms=12)
    assert rig.ecu.gpio("GPIOA").pin(0) == 0


def test_light_status_is_cyclic_every_10_ms(rig: Rig) -> None:
    rig.net.run_for(ms=100)
    stamps = [s.timestamp_ns for s in rig.seen("LightStatus")]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) >= 9
    assert all(abs(gap - 10_000_000) < 500_000 for gap in gaps)  # bus contention only
    counters = [s.signals["LightStatus_Counter"] for s in rig.seen("LightStatus")]
    assert counters[:5] == list(range(counters[0], counters[0] + 5))


def test_turn_indicator_blinks_at_1_5_hz(rig: Rig) -> None:
    rig.vehicle.set("VehicleState", TurnRequest="Left")
    rig.net.run_for(ms=1500)
    edges = [e for e in rig.ecu.gpio("GPIOA").events if e.pin == 1]
    assert [e.level for e in edges[:4]] == [1, 0, 1, 0]
    periods_ms = [(b.cycle - a.cycle) / 120_000 for a, b in itertools.pairwise(edges)]
    assert all(abs(p - 333) <= 1 for p in periods_ms)
    assert not [e for e in rig.ecu.gpio("GPIOA").events if e.pin == 2]  # right stays off


def test_hazard_blinks_both_and_is_reported(rig: Rig) -> None:
    start = rig.net.now_ns
    rig.vehicle.set("VehicleState", TurnRequest="Hazard")
    rig.net.run_for(ms=50)
    status = rig.seen("LightStatus", start)[-1].signals
    assert status["Hazard"] == 1 and status["TurnLeft"] == 1 and status["TurnRight"] == 1


def test_headlight_modes_and_auto(rig: Rig) -> None:
    rig.send("LightCommand", HeadlightMode="High", FogLight=1)
    rig.net.run_for(ms=20)
    gpio = rig.ecu.gpio("GPIOA")
    assert (gpio.pin(3), gpio.pin(4), gpio.pin(5)) == (0, 1, 1)
    rig.send("LightCommand", HeadlightMode="Auto", AmbientLevel=10)  # dark: low beam
    rig.net.run_for(ms=20)
    assert (gpio.pin(3), gpio.pin(4)) == (1, 0)
    assert rig.seen("LightStatus")[-1].signals["HeadlightState"] == "Low"
    rig.send("LightCommand", HeadlightMode="Auto", AmbientLevel=80)  # daylight: off
    rig.net.run_for(ms=20)
    assert (gpio.pin(3), gpio.pin(4)) == (0, 0)


def test_diagnostic_pages_and_network_management(rig: Rig) -> None:
    rig.vehicle.set("VehicleState", BrakePedal="Pressed")
    rig.net.run_for(ms=1200)
    pages = rig.seen("LightDiag")
    assert [p.signals["DiagPage"] for p in pages[:6]] == [0, 1, 2, 0, 1, 2]
    dtcs = [p for p in pages if p.signals["DiagPage"] == 2]
    assert dtcs[-1].signals["DtcVehicleStateE2E"] == 0 and dtcs[-1].signals["E2EErrors"] == 0
    lit = [p for p in pages if p.signals["DiagPage"] == 0 and p.signals["BrakeLampCurrent"] > 0]
    assert lit and lit[0].signals["BrakeLampCurrent"] == pytest.approx(1.25)
    counters = [p for p in pages if p.signals["DiagPage"] == 1]
    assert counters[-1].signals["RxFrames"] >= 1
    nm = rig.seen("ElcNetworkManagement")
    assert len(nm) == 2 and nm[0].signals["NmSourceNode"] == 0x10
    assert nm[0].frame.is_extended
    assert rig.ecu.read_symbol("tx_dropped") == 0 and rig.ecu.read_symbol("rx_overruns") == 0
