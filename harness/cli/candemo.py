"""The CAN part of `harness demo`: the exterior-light controller answering stimuli by name."""

from __future__ import annotations

from collections.abc import Callable

from harness.build import build
from harness.dbc import Dbc
from harness.e2e.config import from_dbc
from harness.frames.ids import id_key
from harness.machine import Machine
from harness.network import Network, PythonNode
from harness.restbus import RestBus

STIMULI = (  # (virtual ms, message, signals): the rest-bus sends these from then on
    (20, "VehicleState", {"Speed": 50, "BrakePedal": "Pressed"}),
    (45, "VehicleState", {"Speed": 50, "BrakePedal": "Released", "TurnRequest": "Left"}),
    (70, "LightCommand", {"HeadlightMode": "Auto", "AmbientLevel": 10}),
)
STOP_MS = 120  # then VehicleState stops arriving: the ELC times out into its safe state


def _signals(values: dict[str, object]) -> str:
    return ", ".join(f"{k}={round(v, 3) if isinstance(v, float) else v}" for k, v in values.items()
                     if not k.endswith(("_Counter", "_CRC")))  # fmt: skip


def run(ms: float = 250) -> None:
    dbc = Dbc.load()
    net = Network()
    net.can_bus("can0", bitrate=500_000, data_bitrate=2_000_000)
    net.add_ecu("ELC", Machine(build(["elc"])["elc"]))
    spy = PythonNode("spy", net.bus("can0"))
    vehicle = RestBus(net, dbc, "ELC", e2e=from_dbc(dbc))
    for at_ms, name, signals in STIMULI:
        net.clock.schedule_at(int(at_ms * 1e6), _setter(vehicle, name, signals))
    net.clock.schedule_at(STOP_MS * 1_000_000, lambda: vehicle.stop("VehicleState"))
    net.run_for(ms=ms)

    print("\nExterior-light controller (firmware_stubs/elc) on can0, 500 kbit/s / 2 Mbit/s FD,")
    print("with a rest-bus (VehicleState E2E-protected every 10 ms, LightCommand every 100 ms);")
    print(f"VehicleState stops at {STOP_MS} ms. Frames are shown when their content changes:")
    print(f"  {'time (ms)':>10}  {'from':7} {'message':14} signals")
    own = dbc.sent_by("ELC")
    last: dict[str, str] = {}
    for frame in spy.received:
        decoded = dbc.decode(frame)
        if decoded is None or decoded.name not in ("VehicleState", "LightCommand", "LightStatus"):
            continue
        text = _signals(decoded.signals)
        if last.get(decoded.name) == text:
            continue
        last[decoded.name] = text
        sender = "ELC" if id_key(frame.arbitration_id, frame.is_extended) in own else "vehicle"
        print(f"  {frame.timestamp_ns / 1e6:10.3f}  {sender:7} {decoded.name:14} {text}")
    stats = net.bus("can0").stats
    print(f"  {stats.frames} frames in {ms:g} ms, bus load {stats.load(net.now_ns):.1%}")


def _setter(vehicle: RestBus, name: str, signals: dict[str, object]) -> Callable[[], None]:
    return lambda: vehicle.set(name, **signals)
