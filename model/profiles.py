"""The two profiles of a run: `corrected` (the original's defects fixed) and `paper` (its behaviour kept).

What each profile changes is listed in docs/quirks.md; the spec (`model.runs.spec`) and the zoos take the name.
"""
from model.errors import SpecError

PROFILES = ("corrected", "paper")


def check_profile(profile, context: str = "") -> str:
    """Return `profile` if it is one of `PROFILES`, else raise `SpecError` (prefixed by `context`, e.g. the network)."""
    if profile not in PROFILES:
        raise SpecError(f"{context}profile {profile!r}: expected one of {', '.join(PROFILES)}")
    return profile
