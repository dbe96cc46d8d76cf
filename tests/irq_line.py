"""An interrupt line for peripheral models under test: its level and every change of it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Line:
    level: bool = False
    changes: list[bool] = field(default_factory=list)

    def set(self, level: bool) -> None:
        if level != self.level:
            self.changes.append(level)
        self.level = level
