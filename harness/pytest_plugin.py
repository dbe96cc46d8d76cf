"""pytest plugin (entry point `pytest11`): fixtures for ECUs on a simulated CAN FD bus and
LIN cluster.

Options (all under --harness-):
  --harness-firmware=ELF|TARGET   firmware under test (default: the bundled `elc` target)
  --harness-dbc=PATH              communication matrix (default: the bundled exterior_light.dbc)
  --harness-ldf=PATH              LIN cluster (default: the bundled exterior_light.ldf)
  --harness-lin-port=USART        the ECU's USART on lin0 (default USART2)
  --harness-board=NAME            board (default ASILB-M4; ASILB-M4F has an FPU)
  --harness-bitrate=N / --harness-data-bitrate=N   can0 bit rates (500000 / 2000000)
Markers: @pytest.mark.harness_firmware("canecho") picks another firmware for one test,
@pytest.mark.harness_board("ASILB-M4F") another board.

Fixtures: harness_firmware (the ELF path), harness_board, harness_dbc, harness_ldf,
harness_network (a fresh network with can0 and lin0 at the LDF's bit rate), harness_ecu (the
firmware booted on it, MCAN0 on can0 and its LIN USART on lin0, fresh per test), harness_can
(a `CanTester`: send / expect / expect_cycle / expect_silence in virtual time), harness_lin (a
`LinCluster`: the LDF's slaves as harness nodes; publish / expect / expect_schedule / inject),
harness_uds (an opened udsoncan `Client` on the ECU's diagnostic IDs, in virtual time).
Every test gets its own network and machine: nothing is shared between tests or xdist workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from udsoncan.client import Client

from harness.board import Board
from harness.boards import BOARDS, DEFAULT_BOARD
from harness.build import TARGETS, build
from harness.dbc import PROJECT_DBC, Dbc
from harness.ldf import PROJECT_LDF, Ldf
from harness.lin_testing import LinCluster
from harness.machine import Machine
from harness.network import Network
from harness.peripherals.security import KeysLocked
from harness.testing import CanTester
from harness.uds import SECURITY_KEY_SLOT, TEST_SECURITY_SECRET, diag_ids, uds_client

BOOT_TIMEOUT_MS = 100


@dataclass(frozen=True, slots=True)
class Settings:
    firmware: str
    board: str
    dbc: Path
    ldf: Path
    lin_port: str
    bitrate: int
    data_bitrate: int


SETTINGS = pytest.StashKey[Settings]()
ELF_CACHE = pytest.StashKey[dict[str, Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "firmware-simulation harness")
    group.addoption("--harness-firmware", default="elc",
                    help="firmware ELF, or a bundled target name (default: elc)")  # fmt: skip
    group.addoption("--harness-board", default=DEFAULT_BOARD.name, choices=sorted(BOARDS),
                    help=f"board (default {DEFAULT_BOARD.name})")  # fmt: skip
    group.addoption("--harness-dbc", default=str(PROJECT_DBC), help="DBC file")
    group.addoption("--harness-ldf", default=str(PROJECT_LDF), help="LDF file (LIN cluster)")
    group.addoption("--harness-lin-port", default="USART2",
                    help="the ECU's USART on the LIN bus lin0 (default USART2)")  # fmt: skip
    group.addoption("--harness-bitrate", type=int, default=500_000, help="can0 bit rate")
    group.addoption("--harness-data-bitrate", type=int, default=2_000_000,
                    help="can0 CAN FD data bit rate")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "harness_firmware(elf_or_target): firmware under test for this test"
    )
    config.addinivalue_line("markers", "harness_board(name): board for this test's ECU")
    bitrate, data_bitrate = (config.getoption("--harness-bitrate"),
                             config.getoption("--harness-data-bitrate"))  # fmt: skip
    if bitrate <= 0 or data_bitrate < bitrate:
        raise pytest.UsageError(
            f"--harness-bitrate must be positive and --harness-data-bitrate at least it "
            f"(got {bitrate} and {data_bitrate})"
        )
    config.stash[SETTINGS] = Settings(config.getoption("--harness-firmware"),
                                      config.getoption("--harness-board"),
                                      Path(config.getoption("--harness-dbc")),
                                      Path(config.getoption("--harness-ldf")),
                                      config.getoption("--harness-lin-port"),
                                      bitrate, data_bitrate)  # fmt: skip
    config.stash[ELF_CACHE] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for mark in item.iter_markers("harness_firmware"):
            if len(mark.args) != 1 or not isinstance(mark.args[0], str | Path) or mark.kwargs:
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.harness_firmware takes one ELF path or "
                    f"target name, got args={mark.args!r} kwargs={mark.kwargs!r}"
                )
        for mark in item.iter_markers("harness_board"):
            if len(mark.args) != 1 or mark.args[0] not in BOARDS or mark.kwargs:
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.harness_board takes one board name "
                    f"({', '.join(BOARDS)}), got args={mark.args!r} kwargs={mark.kwargs!r}"
                )


def _resolve(config: pytest.Config, firmware: str | Path) -> Path:
    cache = config.stash[ELF_CACHE]
    key = str(firmware)
    if key not in cache:
        if key in {t.name for t in TARGETS}:
            cache[key] = build([key])[key]
        else:
            path = Path(key)
            if not path.exists():
                names = ", ".join(t.name for t in TARGETS)
                raise pytest.UsageError(f"harness firmware {key!r} is neither a file nor a "
                                        f"bundled target ({names})")  # fmt: skip
            cache[key] = path
    return cache[key]


@pytest.fixture
def harness_firmware(request: pytest.FixtureRequest) -> Path:
    mark = request.node.get_closest_marker("harness_firmware")
    chosen = mark.args[0] if mark else request.config.stash[SETTINGS].firmware
    return _resolve(request.config, chosen)


@pytest.fixture
def harness_board(request: pytest.FixtureRequest) -> Board:
    mark = request.node.get_closest_marker("harness_board")
    return BOARDS[mark.args[0] if mark else request.config.stash[SETTINGS].board]


@pytest.fixture(scope="session")
def harness_dbc(pytestconfig: pytest.Config) -> Dbc:
    return Dbc.load(pytestconfig.stash[SETTINGS].dbc)


@pytest.fixture(scope="session")
def harness_ldf(pytestconfig: pytest.Config) -> Ldf:
    return Ldf.load(pytestconfig.stash[SETTINGS].ldf)


@pytest.fixture
def harness_network(pytestconfig: pytest.Config, harness_ldf: Ldf) -> Network:
    settings = pytestconfig.stash[SETTINGS]
    network = Network()
    network.can_bus("can0", settings.bitrate, settings.data_bitrate)
    network.lin_bus("lin0", harness_ldf.bitrate)
    return network


@pytest.fixture
def harness_ecu(pytestconfig: pytest.Config, harness_network: Network, harness_firmware: Path,
                harness_board: Board) -> Machine:  # fmt: skip
    """The firmware with MCAN0 on can0 and its LIN USART on lin0, run until its CAN
    controller is on the bus."""
    ecu = harness_network.add_ecu("ECU", Machine(harness_firmware, harness_board))
    lin_port = pytestconfig.stash[SETTINGS].lin_port
    harness_network.attach(harness_network.port("ECU", lin_port), "lin0")
    harness_network.run_until_on_bus(harness_network.can_port("ECU", "MCAN0"),
                                     timeout_ms=BOOT_TIMEOUT_MS)  # fmt: skip
    return ecu


@pytest.fixture
def harness_can(harness_network: Network, harness_dbc: Dbc, harness_ecu: Machine) -> CanTester:
    return CanTester(harness_network, harness_dbc)


@pytest.fixture
def harness_uds(harness_network: Network, harness_dbc: Dbc,
                harness_ecu: Machine) -> Iterator[Client]:  # fmt: skip
    """An opened `udsoncan.Client` on the ECU over ISO-TP (can-isotp) on can0, in virtual
    time: the diagnostic IDs of the DBC (DiagRequest_<ECU> / DiagResponse_<ECU>), CAN FD when
    the DBC's request message is FD; the test security-access secret is provisioned into the
    ECU's key slot 1 unless its keys are already locked."""
    ids = diag_ids(harness_dbc)
    request = next(m for m in harness_dbc.database.messages if m.frame_id == ids.request)
    with contextlib.suppress(KeysLocked):
        harness_ecu.peripheral("SEC").provision_key(  # type: ignore[attr-defined]
            SECURITY_KEY_SLOT, TEST_SECURITY_SECRET)
    with uds_client(harness_network, ids=ids, fd=bool(request.is_fd)) as client:
        yield client


@pytest.fixture
def harness_lin(harness_network: Network, harness_ldf: Ldf, harness_ecu: Machine) -> LinCluster:
    """The LDF's slaves on lin0 as harness nodes; the ECU is the master (and its LIN tables,
    if it has them, must know every frame of the LDF)."""
    return LinCluster(harness_network, harness_ldf, "lin0", firmware=harness_ecu)
