"""Regression suites spread over hosts: pytest-xdist's remote workers through execnet's
socket gateways, here two loopback "hosts" (execnet's socket server in two directories) that
get the tests and traces by xdist's rsync and run the golden traces between them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.paths import build_dir

ROOT = Path(__file__).parent.parent
SYNCED = ("harness", "tests", "traces", "dbc", "firmware_stubs", "pyproject.toml")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if server.poll() is not None:
            raise RuntimeError(f"the socket server on port {port} exited: {server.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # test set-up, outside any simulation
    raise RuntimeError(f"no socket server listening on port {port}")


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[list[tuple[int, Path]]]:
    """Two execnet socket servers, as a farm's hosts run them; the build cache shared."""
    env = {**os.environ, "HARNESS_BUILD_DIR": str(build_dir())}
    servers, found = [], []
    try:
        for n in range(2):
            home, port = tmp_path / f"host{n}", _free_port()
            home.mkdir()
            # in loop mode: the probe connection of _wait_listening costs it one failed exec
            servers.append(subprocess.Popen(
                [sys.executable, "-m", "execnet.script.socketserver", f"127.0.0.1:{port}"],
                cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            _wait_listening(port, servers[-1])
            found.append((port, home))
        yield found
    finally:
        for server in servers:
            server.kill()
            server.wait()


def test_golden_traces_run_on_two_socket_gateways(hosts: list[tuple[int, Path]]) -> None:
    txs = [f"--tx=socket=127.0.0.1:{port}//chdir={home}" for port, home in hosts]
    syncs = [f"--rsyncdir={ROOT / name}" for name in SYNCED]
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--dist=load", "-v",
           "-W", "ignore::DeprecationWarning", *txs, *syncs,
           str(ROOT / "tests" / "test_golden_traces.py")]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            check=False)  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    passed = [line for line in out.splitlines() if "PASSED" in line]
    assert any(line.startswith("[gw0]") for line in passed), out[-3000:]
    assert any(line.startswith("[gw1]") for line in passed), out[-3000:]
    assert len(passed) == 1 + len(list((ROOT / "traces" / "stimuli").glob("*.asc")))
    for _, home in hosts:  # each host worked in its own copy
        assert (home / "tests" / "test_golden_traces.py").is_file()
