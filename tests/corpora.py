"""Real-world test data: the sample files that python-can's and cantools' source distributions
ship (vendor traces, DBC files), for the versions installed here.

`sdist("python-can")` downloads that distribution's sdist from the package index with pip,
once, and unpacks it under the build directory (`build/corpora/` in a checkout); later runs
use the copy and never touch the network. Several pytest-xdist workers may ask at once: a
file lock makes one download and the others wait for it. A download that fails raises
`CorpusUnavailable` with the command that fetches it by hand: the tests then fail, they are
not skipped.
"""

from __future__ import annotations

import fcntl
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

from harness.paths import build_dir

DOWNLOAD_TIMEOUT_S = 900


class CorpusUnavailable(RuntimeError):
    """An sdist that could not be downloaded or unpacked."""


def download_command(distribution: str, dist_version: str, into: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            f"{distribution}=={dist_version}", "-d", str(into)]  # fmt: skip


def sdist(distribution: str) -> Path:
    """The unpacked source distribution of the installed `distribution` (its top directory)."""
    dist_version = version(distribution)
    root = build_dir() / "corpora"
    target = root / f"{_normalized(distribution)}-{dist_version}"
    if (target / ".complete").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        if (target / ".complete").exists():  # another worker made it while we waited
            return target
        archive = _download(distribution, dist_version, root / "downloads")
        _unpack(archive, target)
        (target / ".complete").touch()
    return target


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _download(distribution: str, dist_version: str, downloads: Path) -> Path:
    into = downloads / f"{_normalized(distribution)}-{dist_version}"
    found = _archives(into)
    if len(found) == 1:  # downloaded before, not unpacked (an interrupted run)
        return found[0]
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    command = download_command(distribution, dist_version, into)
    how = f"fetch it with:\n    {shlex.join(command)}"
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                timeout=DOWNLOAD_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise CorpusUnavailable(
            f"downloading the {distribution} {dist_version} sdist (test data) took over "
            f"{DOWNLOAD_TIMEOUT_S} s; {how}"
        ) from None
    found = _archives(into)
    if result.returncode != 0 or len(found) != 1:
        said = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise CorpusUnavailable(f"cannot download the {distribution} {dist_version} sdist "
                                f"(test data); {how}\npip said:\n{said}")  # fmt: skip
    return found[0]


def _archives(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir() if p.name.endswith((".tar.gz", ".zip"))]


def _unpack(archive: Path, target: Path) -> None:
    """Into `target`, atomically: the archive's single top directory becomes `target`."""
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        try:
            if archive.name.endswith(".zip"):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(scratch)
            else:
                with tarfile.open(archive) as tar:
                    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                    tar.extractall(scratch, **safe)  # type: ignore[arg-type]
        except (OSError, tarfile.TarError, zipfile.BadZipFile) as err:
            archive.unlink(missing_ok=True)  # fetched again next time
            raise CorpusUnavailable(f"{archive}: cannot unpack ({err}); it is deleted, run "
                                    f"the tests again to fetch it again") from err  # fmt: skip
        tops = list(Path(scratch).iterdir())
        top = tops[0] if len(tops) == 1 and tops[0].is_dir() else Path(scratch)
        shutil.rmtree(target, ignore_errors=True)
        top.rename(target)
        if top == Path(scratch):
            Path(scratch).mkdir()  # TemporaryDirectory wants something to remove


def files(directory: Path, what: str) -> list[Path]:
    """Every file in one of an sdist's data directories, sorted by name."""
    if not directory.is_dir():
        raise CorpusUnavailable(f"{directory}: not in the sdist any more; where did {what} go?")
    return sorted((p for p in directory.iterdir() if p.is_file()), key=lambda p: p.name)
