"""The network part of `harness demo`: the exterior-light controller answering stimuli by name
on CAN, and running its LIN cluster (the LDF's slaves played by the harness)."""

from __future__ import annotations

from collections.abc import Callable

from harness.build import build
from harness.dbc import Dbc
from harness.e2e.config import from_dbc
from harness.frames.ids import id_key
from harness.ldf import Ldf
from harness.lin_testing import LinCluster
from harness.machine import Machine
from harness.network import Network, PythonNode
from harness.restbus import RestBus

STIMULI = (  # (virtual ms, message, signals): the rest-bus sends these from then on
    (20, "VehicleState", {"Speed": 50, "BrakePedal": "Pressed"}),
    (45, "VehicleState", {"Speed": 50, "BrakePedal": "Released", "TurnRequest": "Left"}),
    (70, "LightCommand", {"HeadlightMode": "Auto", "AmbientLevel": 10}),
)
STOP_MS = 120  # then VehicleState stops arriving: the ELC times out into its safe state
LIN_STIMULI = (  # (virtual ms, LIN frame, signals): the steering-column switch's news
    (30, "SwitchStatus", {"TurnStalk": "Right", "LightSwitch": "LowBeam", "ScsSupply": 13.8}),
)
CAN_SHOWN = ("VehicleState", "LightCommand", "LightStatus", "LinGateway")


def _signals(values: dict[str, object]) -> str:
    return ", ".join(f"{k}={round(v, 3) if isinstance(v, float) else v}" for k, v in values.items()
                     if not k.endswith(("_Counter", "_CRC")))  # fmt: skip


def run(ms: float = 250) -> None:
    dbc = Dbc.load()
    net = Network()
    net.can_bus("can0", bitrate=500_000, data_bitrate=2_000_000)
    ldf = Ldf.load()
    net.lin_bus("lin0", ldf.bitrate)
    net.add_ecu("ELC", Machine(build(["elc"])["elc"]))
    net.attach(net.port("ELC", "USART2"), "lin0")
    spy = PythonNode("spy", net.bus("can0"))
    vehicle = RestBus(net, dbc, "ELC", e2e=from_dbc(dbc))
    cluster = LinCluster(net, ldf)
    for at_ms, name, signals in STIMULI:
        net.clock.schedule_at(int(at_ms * 1e6), _setter(vehicle, name, signals))
    for at_ms, name, signals in LIN_STIMULI:
        net.clock.schedule_at(int(at_ms * 1e6), _publisher(cluster, name, signals))
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
        if decoded is None or decoded.name not in CAN_SHOWN:
            continue
        text = _signals(decoded.signals)
        if last.get(decoded.name) == text:
            continue
        last[decoded.name] = text
        sender = "ELC" if id_key(frame.arbitration_id, frame.is_extended) in own else "vehicle"
        print(f"  {frame.timestamp_ns / 1e6:10.3f}  {sender:7} {decoded.name:14} {text}")
    stats = net.bus("can0").stats
    print(f"  {stats.frames} frames in {ms:g} ms, bus load {stats.load(net.now_ns):.1%}")

    print(f"\nIts LIN cluster on lin0 ({ldf.bitrate} bit/s, dbc/exterior_light.ldf): the ELC is "
          "master and runs NormalTable;")
    print("the switch (SCS) and the lamps are the harness's. Frames are shown when their content "
          "or status changes:")  # fmt: skip
    print(f"  {'time (ms)':>10}  {'from':7} {'frame':14} signals")
    seen: dict[int, str] = {}
    for record in cluster.bus.records:
        if record.frame_id is None:
            continue
        lin_frame = ldf.frame(record.frame_id)
        text = (_signals(ldf.decode(lin_frame.name, record.data)) if record.status == "ok"
                else record.status)  # fmt: skip
        if seen.get(record.frame_id) == text:
            continue
        seen[record.frame_id] = text
        sender = record.publisher.split(".")[0] or "-"
        print(f"  {record.timestamp_ns / 1e6:10.3f}  {sender:7} {lin_frame.name:14} {text}")
    print(f"  {len(cluster.bus.records)} LIN frames in {ms:g} ms")


def _setter(vehicle: RestBus, name: str, signals: dict[str, object]) -> Callable[[], None]:
    return lambda: vehicle.set(name, **signals)


def _publisher(cluster: LinCluster, name: str, signals: dict[str, object]) -> Callable[[], None]:
    def publish() -> None:
        cluster.publish(name, **signals)

    return publish
