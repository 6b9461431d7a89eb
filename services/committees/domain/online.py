"""Rules of online parent schools (pure): join links, online attendance, completion per guardian."""

from __future__ import annotations

import math

from services.committees.domain.rules import Conflict, RuleBroken

ONLINE_MODES = frozenset({"online", "mixed"})


def join_link(mode: str, given: str | None, base: str, session_id: str) -> str | None:
    """A session held online (or mixed) has a join link: the one given (the meeting platform's), else the
    platform's own page of the session; an in-person session has none."""
    if mode not in ONLINE_MODES:
        if given is not None:
            raise RuleBroken("join_url", "an in-person session has no join link (mode online or mixed)")
        return None
    return given or f"{base.rstrip('/')}/{session_id}"


def check_online_attendance(mode: str) -> None:
    """Online attendance is recorded only for sessions held online or mixed."""
    if mode not in ONLINE_MODES:
        raise Conflict("the session is held in person: attendance is recorded in person, not online")


def attended_online(minutes: int, min_minutes: int) -> bool:
    """A guardian attended an online session when connected for at least `min_minutes` (the whole session when it
    is shorter is the platform's business: it reports the minutes)."""
    return minutes >= min_minutes


def completed(attended: int, held: int, share: float) -> bool:
    """A guardian completed a parent school having attended (online or in person) at least `share` of its held
    sessions, and at least one."""
    return held > 0 and attended >= max(1, math.ceil(share * held - 1e-9))
