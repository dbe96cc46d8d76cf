"""Ship the bundled firmware sources and DBC inside the package.

`firmware_stubs/` and `dbc/` stay at the top level of the repository (the project layout);
this build hook copies them into the built package as `harness/_bundled/firmware_stubs/` and
`harness/_bundled/dbc/`, where `harness.paths.bundled()` finds them in an installed wheel.
An editable install (`pip install -e .`) copies nothing: it finds them at the top level.
Everything else is configured in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("firmware_stubs", "dbc")


class BuildPyWithBundledFiles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in BUNDLED:
            source = ROOT / name
            if not source.is_dir():
                raise FileNotFoundError(f"{name}/ not found beside setup.py ({source})")
            target = Path(self.build_lib) / "harness" / "_bundled" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.elf", "*.o"))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            bundled = Path(self.build_lib) / "harness" / "_bundled"
            outputs += [str(p) for p in sorted(bundled.rglob("*")) if p.is_file()]
        return outputs


setup(cmdclass={"build_py": BuildPyWithBundledFiles})
