"""The README's Python examples run as written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_examples_run(firmware: dict[str, Path]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 4, "README lost its Python examples"
    for i, block in enumerate(blocks):
        if "@pytest.fixture" in block:
            continue  # a fixture definition, not a script
        source = textwrap.dedent(block)  # examples inside list items are indented
        exec(compile(source, f"README.md example {i + 1}", "exec"), {})
