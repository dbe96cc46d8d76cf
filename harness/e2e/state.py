"""The receive side of E2E: a check status per payload and the AUTOSAR E2E state machine.

Check status (as E2E_P04/P05's): ERROR (CRC, data ID or an invalid counter), REPEATED (same
counter as the last good frame), OK (counter advanced by 1..max_delta_counter),
WRONG_SEQUENCE (advanced by more: frames were lost), NO_NEW_DATA (nothing arrived this cycle).
The state machine (E2E_SMCheck) keeps the last `window_size` statuses and moves
NODATA -> INIT -> VALID / INVALID by the counts of OK and ERROR in that window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from harness.e2e.profiles import Profile


class CheckStatus(Enum):
    OK = "OK"
    REPEATED = "REPEATED"
    WRONG_SEQUENCE = "WRONG_SEQUENCE"
    ERROR = "ERROR"
    NO_NEW_DATA = "NO_NEW_DATA"


class SmState(Enum):
    NODATA = "NODATA"
    INIT = "INIT"
    VALID = "VALID"
    INVALID = "INVALID"


@dataclass(frozen=True)
class SmConfig:
    """E2E_SMConfigType: the window and the OK/ERROR counts each state needs."""

    window_size: int = 3
    min_ok_init: int = 2
    max_error_init: int = 0
    min_ok_valid: int = 2
    max_error_valid: int = 1
    min_ok_invalid: int = 3
    max_error_invalid: int = 0


class E2EReceiver:
    """Checks one protected message as it arrives; `state` is its E2E state machine."""

    def __init__(self, profile: Profile, config: SmConfig | None = None) -> None:
        self.profile = profile
        self.config = config or SmConfig()
        self.state = SmState.NODATA
        self.status: CheckStatus | None = None
        self._last_counter: int | None = None
        self._window: deque[CheckStatus] = deque(maxlen=self.config.window_size)

    def check(self, payload: bytes | None) -> CheckStatus:
        """Check the payload that arrived this cycle (None: nothing arrived)."""
        self.status = status = self._status(payload)
        self._state_machine(status)
        return status

    def _status(self, payload: bytes | None) -> CheckStatus:
        if payload is None:
            return CheckStatus.NO_NEW_DATA
        p = self.profile
        if not p.crc_ok(payload):
            return CheckStatus.ERROR
        counter = p.counter(payload)
        last, self._last_counter = self._last_counter, counter
        if last is None:
            return CheckStatus.OK
        delta = (counter - last) % p.counter_modulo
        if delta == 0:
            return CheckStatus.REPEATED
        return CheckStatus.OK if delta <= p.max_delta_counter else CheckStatus.WRONG_SEQUENCE

    def _state_machine(self, status: CheckStatus) -> None:
        c = self.config
        if self.state is SmState.NODATA:
            if status in (CheckStatus.ERROR, CheckStatus.NO_NEW_DATA):
                return
            self.state = SmState.INIT
            self._window.clear()
        self._window.append(status)
        ok = sum(s is CheckStatus.OK for s in self._window)
        errors = sum(s is CheckStatus.ERROR for s in self._window)
        if self.state is SmState.INIT:
            if errors <= c.max_error_init and ok >= c.min_ok_init:
                self.state = SmState.VALID
            elif errors > c.max_error_init:
                self.state = SmState.INVALID
        elif self.state is SmState.VALID:
            if not (errors <= c.max_error_valid and ok >= c.min_ok_valid):
                self.state = SmState.INVALID
        elif errors <= c.max_error_invalid and ok >= c.min_ok_invalid:
            self.state = SmState.VALID


class E2ESender:
    """The send side: protects each message named in `profiles`, counting per message."""

    def __init__(self, profiles: Mapping[str, Profile]) -> None:
        self.profiles = dict(profiles)
        self.counters: dict[str, int] = {}

    def protect(self, name: str, data: bytes) -> bytes:
        profile = self.profiles.get(name)
        if profile is None:
            return data
        counter = self.counters.get(name, 0)
        self.counters[name] = (counter + 1) % profile.counter_modulo
        return profile.protect(data, counter)
