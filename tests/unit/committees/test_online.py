"""Rules of online parent schools (pure): join links, online attendance, completion per guardian."""

from __future__ import annotations

import pytest

from services.committees.domain.online import attended_online, check_online_attendance, completed, join_link
from services.committees.domain.rules import Conflict, RuleBroken


def test_online_and_mixed_sessions_get_a_join_link_in_person_ones_none():
    assert join_link("online", None, "https://hss.example/ps/", "s1") == "https://hss.example/ps/s1"
    assert join_link("mixed", "https://meet.example/x", "https://hss.example/ps", "s1") == "https://meet.example/x"
    assert join_link("in_person", None, "https://hss.example/ps", "s1") is None
    with pytest.raises(RuleBroken) as err:
        join_link("in_person", "https://meet.example/x", "https://hss.example/ps", "s1")
    assert err.value.field == "join_url"


def test_online_attendance_only_for_online_or_mixed_sessions_and_counts_from_the_minimum_minutes():
    check_online_attendance("online")
    check_online_attendance("mixed")
    with pytest.raises(Conflict):
        check_online_attendance("in_person")
    assert attended_online(20, 20) and attended_online(90, 20)
    assert not attended_online(19, 20) and not attended_online(0, 20)


def test_a_guardian_completes_a_parent_school_with_the_configured_share_of_held_sessions():
    assert completed(4, 5, 0.8) and not completed(3, 5, 0.8)
    assert completed(2, 2, 0.8) and not completed(1, 2, 0.8)  # 80 % of 2 rounds up to 2
    assert completed(1, 1, 0.8)
    assert not completed(0, 0, 0.8)  # nothing held: nothing to complete
    assert completed(1, 3, 0.0)  # at least one session whatever the share
    assert not completed(0, 3, 0.0)
