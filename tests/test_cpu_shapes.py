"""Instruction shapes Unicorn 2.1.4 executed wrongly with its virtual TLB: regression tests.

The routines are hand-written assembly in firmware_stubs/tests/cpushapes.c. With
UC_TLB_VIRTUAL the IT-block shape after a loop back-edge skipped its load (580 read as 243).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import Machine


@pytest.fixture(scope="module")
def shapes(firmware: dict[str, Path]) -> Machine:
    m = Machine(firmware["cpushapes"])
    m.run_until(lambda: m.read_symbol("done") == 1, timeout_ms=5)
    return m


def test_branch_target_after_it_store_not_executed_runs(shapes: Machine) -> None:
    # cmp; it ls; strls.w r4, [r11] (not taken); b target: the target's first instruction
    # runs on each of four iterations.
    assert shapes.read_symbol("result_it_store_branch") == 4


def test_load_after_itte_block_and_back_edge_runs(shapes: Machine) -> None:
    # Sum of table[0..7] = 36 and four odd entries: 36 * 16 + 4.
    assert shapes.read_symbol("result_itte_backedge") == 36 * 16 + 4


def test_unaligned_ldr_and_aligned_ldm_still_run(shapes: Machine) -> None:
    assert shapes.read_symbol("result_unaligned_ldr") == 0x54433221
    assert shapes.read_symbol("result_aligned_ldm") == 1 + 2
