"""Virtual clock and scheduler."""

from __future__ import annotations

import pytest

from harness.clock import VirtualClock


def test_events_fire_in_deadline_then_schedule_order() -> None:
    clock = VirtualClock(1000)
    fired: list[str] = []
    clock.schedule_at(20, lambda: fired.append("b"))
    clock.schedule_at(10, lambda: fired.append("a"))
    clock.schedule_at(20, lambda: fired.append("c"))
    clock.cycles = 15
    assert clock.fire_due()
    assert fired == ["a"]
    clock.cycles = 20
    clock.fire_due()
    assert fired == ["a", "b", "c"]
    assert clock.next_deadline() is None


def test_deadline_rearm_and_disarm_leave_stale_entries_harmless() -> None:
    clock = VirtualClock(1000)
    hits: list[int] = []
    d = clock.deadline(lambda: hits.append(clock.cycles))
    d.arm_at(10)
    d.arm_at(30)  # re-armed: the entry at 10 must not fire
    clock.cycles = 40
    clock.fire_due()
    assert hits == [40]
    d.arm_at(50)
    d.disarm()
    clock.cycles = 60
    clock.fire_due()
    assert hits == [40]


def test_state_restore_replays_the_same_future() -> None:
    clock = VirtualClock(1000)
    hits: list[int] = []
    d = clock.deadline(lambda: hits.append(clock.cycles))
    d.arm_at(100)
    saved, dsaved = clock.state(), d.state()
    clock.cycles = 100
    clock.fire_due()
    clock.restore(saved)
    d.restore(dsaved)
    clock.cycles = 100
    clock.fire_due()
    assert hits == [100, 100]


def test_time_conversions() -> None:
    clock = VirtualClock(120_000_000)
    assert clock.cycles_for(ms=1) == 120_000
    assert clock.cycles_for(us=2.5) == 300
    clock.cycles = 120_000_000
    assert clock.ns == 1_000_000_000
    assert clock.seconds == 1.0
    with pytest.raises(ValueError, match="positive"):
        VirtualClock(0)


def test_next_deadline_names_a_moment_something_happens() -> None:
    clock = VirtualClock(1000)
    hits: list[int] = []
    d = clock.deadline(lambda: hits.append(clock.cycles))
    d.arm_at(150)
    d.arm_at(100)  # earlier: the entry at 150 is stale
    assert clock.next_deadline() == 100
    clock.advance_to(120)
    assert hits == [100] and clock.next_deadline() is None  # not the stale 150
    d.arm_at(300)
    d.disarm()
    assert clock.next_deadline() is None
