"""AUTOSAR E2E protection: profiles 1, 2 and 5, check status and the state machine."""

from harness.e2e.profiles import DataIdMode, Profile, Profile1, Profile2, Profile5
from harness.e2e.state import CheckStatus, E2EReceiver, E2ESender, SmConfig, SmState

__all__ = [
    "CheckStatus",
    "DataIdMode",
    "E2EReceiver",
    "E2ESender",
    "Profile",
    "Profile1",
    "Profile2",
    "Profile5",
    "SmConfig",
    "SmState",
]
