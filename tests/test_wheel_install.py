"""The package as a user gets it: the wheel, installed into a fresh venv, used from a folder
that has nothing to do with this checkout.

The wheel is built (by pip, as a user builds it) from a copy of the checkout, and the copy is
deleted before anything runs: only the wheel's contents are left. The venv is new and has no
access to this checkout; only the third-party dependencies are shared with the checkout's
venv, through a `.pth` file onto symlinks of them (harness's own files left out), so the test
does not download them each time. `pip install --no-index` then checks that they satisfy the
wheel's requirements. Build outputs go to a cache in the test's temporary directory.

The venv is made once per run and shared by the tests of this module (and xdist workers).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_IN_A_USER_CHECKOUT = (".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache",
                          ".benchmarks", "*.elf")  # fmt: skip
TRACE = "brake.asc"  # a stimulus and its golden trace from traces/

ECHO_DBC = """\
VERSION ""


NS_ :

BS_:

BU_: TESTER ECHO


BO_ 512 Ping: 8 TESTER
 SG_ Value : 0|16@1+ (1,0) [0|65535] "" ECHO

BO_ 513 Pong: 8 ECHO
 SG_ Value : 0|16@1+ (1,0) [0|65535] "" TESTER
"""

DEFAULT_FIXTURES_TEST = """\
from pathlib import Path

def test_brake_lamp(harness_can, harness_ecu, harness_firmware, harness_dbc):
    assert harness_firmware.name == "elc.elf"
    assert Path(harness_dbc.source).name == "exterior_light.dbc"
    harness_can.send("VehicleState", Speed=50, BrakePedal="Pressed")
    harness_can.expect("LightStatus", within_ms=20, BrakeLamp=1)

def test_status_is_cyclic(harness_can):
    harness_can.expect_cycle("LightStatus", 10, tolerance_ms=0.5)
"""

OWN_FIRMWARE_TEST = """\
from pathlib import Path

def test_echo(harness_can, harness_firmware, harness_dbc):
    assert harness_firmware.resolve() == (Path.cwd() / "fw" / "my_echo.elf").resolve()
    assert Path(harness_dbc.source).name == "echo.dbc"
    harness_can.send("Ping", Value=4711)
    harness_can.expect("Pong", within_ms=5, Value=4711)
"""


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    site_packages: Path
    cache: Path  # HARNESS_BUILD_DIR of every run

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_", "PYTHON", "HARNESS_", "VIRTUAL_ENV"))}  # fmt: skip
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["HARNESS_BUILD_DIR"] = str(self.cache)
        env.update(extra)
        return env

    def run(self, *cmd: str | Path, cwd: Path, timeout: float = 120,
            **env: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return subprocess.run([str(c) for c in cmd], cwd=cwd, env=self.env(**env), text=True,
                              capture_output=True, timeout=timeout, check=False)  # fmt: skip

    def harness(self, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
        return self.run(self.venv / "bin" / "harness", *args, cwd=cwd)


def _check(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result


def _shared_dir(factory: pytest.TempPathFactory) -> Path:
    """This run's temporary root: the same for every xdist worker of the run."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _install(where: Path) -> Installed:
    # 1. The wheel, built from a copy of the checkout, which is then deleted.
    src = where / "checkout-copy"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_IN_A_USER_CHECKOUT))
    _check(subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                           str(where / "dist"), str(src)], capture_output=True, text=True,
                          check=False))  # fmt: skip
    shutil.rmtree(src)
    (wheel,) = (where / "dist").glob("harness-*.whl")

    # 2. A new venv, and the dependencies it may see: everything installed here but harness.
    venv = where / "venv"
    _check(subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                          capture_output=True, text=True, check=False))  # fmt: skip
    deps = where / "dependencies"
    deps.mkdir()
    for site in {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}:
        for entry in site.iterdir():
            name = entry.name
            if (name.startswith(("harness", "__editable__")) or name.endswith((".pth", ".egg-link"))
                    or name == "__pycache__" or (deps / name).exists()):  # fmt: skip
                continue
            (deps / name).symlink_to(entry)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = Path(_check(subprocess.run([str(venv / "bin" / "python"), "-c", purelib],
                                               capture_output=True, text=True,
                                               check=False)).stdout.strip())  # fmt: skip
    (site_packages / "_dependencies_for_the_test.pth").write_text(f"{deps}\n")

    # 3. The wheel into it, its requirements checked against what the venv sees.
    _check(subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index",
                           "--quiet", "--disable-pip-version-check", str(wheel)],
                          capture_output=True, text=True, check=False, cwd=where))  # fmt: skip
    return Installed(venv, wheel, site_packages, where / "cache")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    shared = _shared_dir(tmp_path_factory)
    where = shared / "wheel-install"
    with open(shared / "wheel-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (where / "ready").exists():
            shutil.rmtree(where, ignore_errors=True)
            where.mkdir()
            _install(where)
            (where / "ready").touch()
    site = next((where / "venv" / "lib").glob("python*/site-packages"))
    return Installed(where / "venv", next((where / "dist").glob("*.whl")), site, where / "cache")


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A user's own project folder, unrelated to this checkout."""
    project = tmp_path / "my_project"
    project.mkdir()
    return project


def test_wheel_carries_the_firmware_sources_the_dbc_and_the_native_helper(
    installed: Installed,
) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for top in ("firmware_stubs", "dbc"):
        shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / top).rglob("*")
                   if p.is_file() and p.suffix not in {".elf", ".o"}}  # fmt: skip
        assert shipped, top
        missing = {f for f in shipped if f"harness/_bundled/{f}" not in names}
        assert not missing, f"not in the wheel: {sorted(missing)}"
    assert "harness/core/native.c" in names
    assert "harness/py.typed" in names
    outside = {n.split("/")[0] for n in names} - {"harness", wheel_dist_info(installed.wheel)}
    assert not outside, f"the wheel installs more than the package: {outside}"


def wheel_dist_info(wheel: Path) -> str:
    name, version = wheel.name.split("-")[:2]
    return f"{name}-{version}.dist-info"


def test_the_installed_package_is_the_wheel_not_this_checkout(
    installed: Installed, user_project: Path
) -> None:
    probe = (
        "import sys, harness, harness.paths as p\n"
        "print(harness.__file__)\n"
        "print(p.checkout_root())\n"
        "print(p.bundled('firmware_stubs'))\n"
        "print(p.bundled('dbc'))\n"
        "print(p.build_dir())\n"
        f"print(any(s.startswith({str(ROOT)!r}) for s in sys.path))\n"
    )
    xdg = user_project / "xdg-cache"
    env = installed.env(XDG_CACHE_HOME=str(xdg))
    del env["HARNESS_BUILD_DIR"]  # the default: the per-user cache
    result = _check(subprocess.run([str(installed.python), "-c", probe], cwd=user_project, env=env,
                                   capture_output=True, text=True, check=False))  # fmt: skip
    init, root, stubs, dbc, build, checkout_on_path = result.stdout.splitlines()
    package = installed.site_packages / "harness"
    assert Path(init) == package / "__init__.py"
    assert root == "None"
    assert Path(stubs) == package / "_bundled" / "firmware_stubs"
    assert (Path(stubs) / "elc" / "main.c").is_file()
    assert (Path(dbc) / "exterior_light.dbc").is_file()
    assert Path(build) == xdg / "harness" / "0.1.0"  # versioned
    assert checkout_on_path == "False"


def test_demo_builds_into_the_cache_not_site_packages(
    installed: Installed, user_project: Path
) -> None:
    result = _check(installed.harness("demo", "--ms", "1100", cwd=user_project))
    assert "Heartbeat LED" in result.stdout
    assert "BrakeLamp" in result.stdout or "LightStatus" in result.stdout  # the CAN part ran
    assert (installed.cache / "firmware" / "app.elf").is_file()
    assert (installed.cache / "firmware" / "elc.elf").is_file()
    assert list((installed.cache / "native").glob("libharness_native-*.so"))
    assert not (installed.site_packages / "build").exists()
    written = [p for p in (installed.site_packages / "harness").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts
               and p.suffix in {".elf", ".so", ".inputs", ".lock"}]  # fmt: skip
    assert not written, f"build outputs inside the package: {written}"
    assert not list(user_project.iterdir()), "the demo wrote into the user's folder"


def test_build_reports_an_unusable_build_dir_clearly(
    installed: Installed, user_project: Path
) -> None:
    blocker = user_project / "a-file"
    blocker.write_text("")
    result = installed.run(installed.venv / "bin" / "harness", "build", "app", cwd=user_project,
                           HARNESS_BUILD_DIR=str(blocker / "build"))  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "Errno" not in result.stderr, result.stderr
    assert f"error: cannot create the build directory {blocker / 'build' / 'firmware'}" in (
        result.stderr
    )
    assert "HARNESS_BUILD_DIR" in result.stderr


def test_user_tests_with_the_default_fixtures(installed: Installed, user_project: Path) -> None:
    (user_project / "test_lights.py").write_text(DEFAULT_FIXTURES_TEST)
    result = installed.run(installed.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "test_lights.py", cwd=user_project)  # fmt: skip
    _check(result)
    assert re.search(r"\b2 passed\b", result.stdout), result.stdout


def test_user_tests_with_their_own_firmware_and_dbc(
    installed: Installed, user_project: Path, firmware: dict[str, Path]
) -> None:
    (user_project / "fw").mkdir()
    shutil.copy(firmware["canecho"], user_project / "fw" / "my_echo.elf")  # their own ELF
    (user_project / "echo.dbc").write_text(ECHO_DBC)
    (user_project / "test_echo.py").write_text(OWN_FIRMWARE_TEST)
    result = installed.run(installed.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "--harness-firmware=fw/my_echo.elf",
                           "--harness-dbc=echo.dbc", "test_echo.py", cwd=user_project)  # fmt: skip
    _check(result)
    assert re.search(r"\b1 passed\b", result.stdout), result.stdout


def test_replay_and_compare_a_trace(installed: Installed, user_project: Path) -> None:
    shutil.copy(ROOT / "traces" / "stimuli" / TRACE, user_project / "drive.asc")
    shutil.copy(ROOT / "traces" / "golden" / TRACE, user_project / "expected.asc")
    built = _check(installed.harness("build", "elc", cwd=user_project)).stdout
    elf = Path(built.split()[1])
    assert elf == installed.cache / "firmware" / "elc.elf"
    dbc = installed.site_packages / "harness" / "_bundled" / "dbc" / "exterior_light.dbc"
    shutil.copy(dbc, user_project / "lights.dbc")
    replayed = _check(installed.harness("replay", "drive.asc", "--firmware", elf, "--dbc",
                                        "lights.dbc", "--ecu-node", "ELC", "-o", "out.asc",
                                        "--no-progress", cwd=user_project))  # fmt: skip
    assert "LightStatus" in replayed.stdout
    compared = installed.harness("compare", "expected.asc", "out.asc", "--dbc", "lights.dbc",
                                 "--window-ms", "1", cwd=user_project)  # fmt: skip
    assert compared.returncode == 0, compared.stdout + compared.stderr


def test_regs_writes_the_board_header_for_the_users_own_firmware(
    installed: Installed, user_project: Path
) -> None:
    refused = installed.harness("regs", cwd=user_project)
    assert refused.returncode == 2 and "give --out DIR" in refused.stderr
    _check(installed.harness("regs", "--out", "include", cwd=user_project))
    for name in ("asilb_m4.h", "asilb_m4.svd"):
        ours = ROOT / "firmware_stubs" / "include" / name
        assert (user_project / "include" / name).read_text() == ours.read_text()
